import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { runSession } from '../../src/core/session';
import { METRICS } from '../../src/shared/metric-table';
import { csvField } from '../../src/core/tables';
import { tempDir } from '../helpers';
import { makeFixture, request } from '../session-fixture';

/** A CSV reader of its own (RFC 4180: quoted fields, doubled quotes, CRLF), independent of the engine's. */
function readCsv(text: string): Array<Record<string, string>> {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
    } else field += c;
  }
  if (field || row.length) rows.push([...row, field]);
  const [header, ...data] = rows;
  return data.map((r) => Object.fromEntries(header.map((h, i) => [h, r[i]])));
}

test('csv fields: plain, quoted, doubled quotes, missing', () => {
  assert.equal(csvField('a'), 'a');
  assert.equal(csvField('region=south & x, y'), '"region=south & x, y"');
  assert.equal(csvField('say "hi"'), '"say ""hi"""');
  assert.equal(csvField(null), '');
  assert.equal(csvField(Number.NaN), '');
  assert.deepEqual(readCsv('a,b\r\n"x, ""y""",2\r\n'), [{ a: 'x, "y"', b: '2' }]);
});

test('every session writes predictions.csv and metrics.csv; each group accuracy in metrics.csv is recomputed from predictions.csv', async () => {
  const dir = tempDir();
  const { csv, modelPath } = await makeFixture(dir, 600);
  const results = await runSession(
    request(modelPath, csv, path.join(dir, '.fairprune'), {
      sparsities: [0.5, 0.9],
      losses: ['ce', 'pw'],
      epochs: 1,
      seeds: 2,
    }),
  );
  const sessionDir = path.join(dir, '.fairprune', 'sessions', results.sessionId);
  const predictions = readCsv(fs.readFileSync(path.join(sessionDir, 'predictions.csv'), 'utf8'));
  const metrics = readCsv(fs.readFileSync(path.join(sessionDir, 'metrics.csv'), 'utf8'));

  // One row per test sample, pointing at its CSV data row: the group and label there are the ones written.
  const source = readCsv(fs.readFileSync(csv, 'utf8'));
  assert.equal(predictions.length, results.data.split.counts.test);
  for (const p of predictions) {
    const src = source[Number(p.row) - 1];
    assert.equal(p.split, 'test');
    assert.match(src.Split, /^test$/i);
    assert.equal(p.region, src.region);
    assert.equal(p.label, src.decision);
  }
  const models = ['dense', ...results.points.map((p) => p.id)];
  assert.equal(results.points.length, 8);
  for (const m of models) {
    assert.ok(`${m}_prediction` in predictions[0] && `${m}_probability` in predictions[0], `columns of ${m}`);
    for (const p of predictions) {
      const prob = Number(p[`${m}_probability`]);
      assert.ok(prob >= 0 && prob <= 1);
      // binary: the probability is the positive class's (denied), so the prediction follows it
      assert.equal(p[`${m}_prediction`], prob >= 0.5 ? 'denied' : 'approved');
    }
  }

  // Metric names are the metric table's.
  const names = new Set(METRICS.map((m) => m.name));
  for (const r of metrics) assert.ok(names.has(r.metric.replace(/\[.*\]$/, '')), `unknown metric ${r.metric}`);
  for (const m of METRICS)
    assert.ok(
      metrics.some((r) => r.metric.startsWith(m.name)),
      `metrics.csv lacks ${m.name}`,
    );

  const value = (point: string, group: string, metric: string) => {
    const rows = metrics.filter((r) => r.point === point && r.group === group && r.metric === metric);
    assert.equal(rows.length, 1, `${point} ${group} ${metric}`);
    return rows[0];
  };
  let checked = 0;
  for (const m of models) {
    for (const group of ['all', 'region=north', 'region=south']) {
      const rows = predictions.filter((p) => group === 'all' || `region=${p.region}` === group);
      const accuracy = rows.filter((p) => p[`${m}_prediction`] === p.label).length / rows.length;
      const selection = rows.filter((p) => p[`${m}_prediction`] === 'denied').length / rows.length;
      const acc = value(m, group, 'accuracy');
      assert.ok(Math.abs(Number(acc.value) - accuracy) < 1e-12, `${m} ${group}: ${acc.value} vs ${accuracy}`);
      assert.equal(Number(acc.n), rows.length);
      assert.ok(Number(acc.low) <= Number(acc.value) && Number(acc.value) <= Number(acc.high));
      assert.ok(Math.abs(Number(value(m, group, 'selection_rate').value) - selection) < 1e-12);
      checked++;
    }
    const worst = value(m, '', 'worst_group_accuracy');
    const groupAcc = ['region=north', 'region=south'].map((g) => Number(value(m, g, 'accuracy').value));
    assert.ok(Math.abs(Number(worst.value) - Math.min(...groupAcc)) < 1e-12);
    assert.ok(
      Math.abs(Number(value(m, '', 'largest_gap').value) - (Math.max(...groupAcc) - Math.min(...groupAcc))) < 1e-12,
    );
  }
  assert.equal(checked, models.length * 3);
  // point, loss, sparsity, seed as the points say
  const r2 = results.points.find((p) => p.run === 2)!;
  const row = value(r2.id, 'all', 'accuracy');
  assert.deepEqual([row.loss, Number(row.sparsity), row.seed], [r2.loss, r2.targetSparsity, '2']);
  assert.deepEqual([value('dense', 'all', 'accuracy').loss, value('dense', 'all', 'accuracy').sparsity], ['', '0']);
});
