import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { loadDataset } from '../../src/core/data/dataset';
import { Rng } from '../../src/core/rng';

function tmpCsv(content: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fp-data-groups-'));
  const p = path.join(dir, 'd.csv');
  fs.writeFileSync(p, content);
  return p;
}

test('groups are named column=value; intersectional groups join with " & "; counts per split are exact', async () => {
  const rng = new Rng(5);
  const rows: Array<{ afam: string; single: string; y: number; split: string }> = [];
  for (let i = 0; i < 300; i++) {
    rows.push({
      afam: rng.next() < 0.3 ? 'yes' : 'no',
      single: rng.next() < 0.5 ? 'yes' : 'no',
      y: rng.int(2),
      split: ['train', 'test', 'validation'][rng.int(3)],
    });
  }
  const file = tmpCsv(
    ['x,afam,single,y,split', ...rows.map((r, i) => `${i},"${r.afam}","${r.single}",${r.y},${r.split}`)].join('\n'),
  );
  const d = await loadDataset(
    { csvPath: file, label: 'y', groups: ['afam', 'single'], seed: 1 },
    { inputShape: [1], outputUnits: 1 },
  );
  assert.deepEqual(d.groupNames, [
    'afam=no & single=no',
    'afam=no & single=yes',
    'afam=yes & single=no',
    'afam=yes & single=yes',
  ]);
  assert.deepEqual(d.record.groupColumns, ['afam', 'single']);
  // independent count from the generated rows
  for (const g of d.record.groups) {
    assert.equal(g.name, `afam=${g.values.afam} & single=${g.values.single}`);
    for (const s of ['train', 'validation', 'test'] as const) {
      const expected = rows.filter(
        (r) => r.afam === g.values.afam && r.single === g.values.single && r.split === s,
      ).length;
      assert.equal(g.counts[s], expected, `${g.name} ${s}`);
    }
  }
  rows.forEach((r, i) => assert.equal(d.groupNames[d.groupIds[i]], `afam=${r.afam} & single=${r.single}`));
});

test('a group with fewer than 30 test samples gets a warning naming it and its count', async () => {
  const lines = ['x,colour,y,split'];
  for (let i = 0; i < 200; i++)
    lines.push(`${i},${i < 40 ? 'Black' : 'White'},${i % 2},${i % 2 === 0 ? 'test' : 'train'}`);
  const file = tmpCsv(lines.join('\n'));
  const d = await loadDataset(
    { csvPath: file, label: 'y', groups: ['colour'], seed: 1 },
    { inputShape: [1], outputUnits: 1 },
  );
  const black = d.record.groups.find((g) => g.name === 'colour=Black')!;
  assert.equal(black.counts.test, 20);
  assert.ok(d.record.warnings.some((w) => w.includes("'colour=Black'") && w.includes('20 test samples')));
  assert.ok(!d.record.warnings.some((w) => w.includes("'colour=White'")));
});

test('numeric group values sort by number, and the content hash changes with the inputs', async () => {
  const a = tmpCsv('x,age,y\n1,10,0\n2,9,1\n3,10,1\n4,9,0\n5,100,1\n6,100,0\n');
  const d = await loadDataset(
    { csvPath: a, label: 'y', groups: ['age'], seed: 1 },
    { inputShape: [1], outputUnits: 1 },
  );
  assert.deepEqual(d.groupNames, ['age=9', 'age=10', 'age=100']);
  const same = await loadDataset(
    { csvPath: a, label: 'y', groups: ['age'], seed: 1 },
    { inputShape: [1], outputUnits: 1 },
  );
  assert.equal(same.contentHash(), d.contentHash());
  assert.match(d.contentHash(), /^[0-9a-f]{64}$/);
  const otherSeed = await loadDataset(
    { csvPath: a, label: 'y', groups: ['age'], seed: 2 },
    { inputShape: [1], outputUnits: 1 },
  );
  if (otherSeed.record.split.assignment !== d.record.split.assignment)
    assert.notEqual(otherSeed.contentHash(), d.contentHash());
  const b = tmpCsv('x,age,y\n1,10,0\n2,9,1\n3,10,1\n4,9,0\n5,100,1\n7,100,0\n');
  const e = await loadDataset(
    { csvPath: b, label: 'y', groups: ['age'], seed: 1 },
    { inputShape: [1], outputUnits: 1 },
  );
  assert.notEqual(e.record.sha256, d.record.sha256);
  assert.notEqual(e.contentHash(), d.contentHash());
});
