/**
 * The "done when": a CSV and a model the loader did not make (its own input order, extra text
 * columns, a split column, text labels) give per-group numbers that an independent computation from
 * the same rows reproduces.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { loadDataset } from '../../src/core/data/dataset';
import { Rng } from '../../src/core/rng';

test('per-group test accuracy of an outside model from the loaded dataset equals an independent computation', async () => {
  const rng = new Rng(2024);
  const lines = ['"id","comment","income","debt","group","outcome","split","age"'];
  for (let i = 0; i < 400; i++) {
    const income = Math.round(rng.normal() * 100) / 10;
    const debt = Math.round(rng.normal() * 100) / 10;
    const age = 20 + rng.int(50);
    const group = ['north', 'south', 'east'][rng.int(3)];
    const outcome = income - 0.5 * debt + rng.normal() > 0 ? 'approved' : 'denied';
    const split = ['Train', 'TEST', 'val'][rng.int(3)];
    lines.push(`${i},"free text, with ""quotes""",${income},${debt},"${group}","${outcome}",${split},${age}`);
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fp-data-contract-'));
  const file = path.join(dir, 'loans.csv');
  fs.writeFileSync(file, lines.join('\r\n') + '\r\n');

  // The outside model: inputs [debt, income, age] (its own order), one sigmoid output = p(approved).
  const w = [-0.9, 1.7, 0.01];
  const bias = -0.3;
  const d = await loadDataset(
    { csvPath: file, label: 'outcome', groups: ['group'], features: ['debt', 'income', 'age'], seed: 1 },
    { inputShape: [3], outputUnits: 1 },
  );
  assert.deepEqual(d.record.label.classes, ['approved', 'denied']); // sorted: index 1 = denied
  // so p(label index 1) = p(denied): the model must be read that way by the engine; here the model outputs p(denied)
  const fromDataset = new Map<string, { n: number; correct: number }>();
  for (const i of d.indices('test')) {
    const z = w[0] * d.x[i * 3] + w[1] * d.x[i * 3 + 1] + w[2] * d.x[i * 3 + 2] + bias;
    const predicted = 1 / (1 + Math.exp(-z)) >= 0.5 ? 1 : 0;
    const g = d.groupNames[d.groupIds[i]];
    const s = fromDataset.get(g) ?? { n: 0, correct: 0 };
    s.n++;
    if (predicted === d.labels[i]) s.correct++;
    fromDataset.set(g, s);
  }

  // Independent: read the lines by hand (the comment field is the only quoted one with a comma).
  const independent = new Map<string, { n: number; correct: number }>();
  for (const line of lines.slice(1)) {
    const m = /^(\d+),"(?:[^"]|"")*",([^,]+),([^,]+),"(\w+)","(\w+)",(\w+),(\d+)$/.exec(line)!;
    const [income, debt, group, outcome, split, age] = [Number(m[2]), Number(m[3]), m[4], m[5], m[6], Number(m[7])];
    if (split.toLowerCase() !== 'test') continue;
    const z = w[0] * debt + w[1] * income + w[2] * age + bias;
    const predicted = 1 / (1 + Math.exp(-z)) >= 0.5 ? 'denied' : 'approved';
    const key = `group=${group}`;
    const s = independent.get(key) ?? { n: 0, correct: 0 };
    s.n++;
    if (predicted === outcome) s.correct++;
    independent.set(key, s);
  }
  assert.deepEqual([...fromDataset.entries()].sort(), [...independent.entries()].sort());
  for (const g of d.record.groups) assert.equal(g.counts.test, independent.get(g.name)!.n);
});
