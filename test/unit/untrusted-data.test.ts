/**
 * The data contract's bad inputs from a user's files: a CSV in another encoding, the many spellings of
 * a missing value, a number column with stray texts, and output / model paths that are not what they
 * should be. Each is refused with one line naming the file, the row or option and the fix, exit 1.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { firstInvalidUtf8, isMissing, parseCsv, readCsvFile, readCsvHeader } from '../../src/core/data/csv';
import { loadDatasetForTraining } from '../../src/core/data/dataset';
import { sha256 } from '../../src/core/atomic';
import { expectUserError, tempDir } from '../helpers';
import { fairprune, writeSmallKerasH5 } from '../untrusted-fixtures';

const TRAIN = ['--label', 'label', '--group', 'group', '--epochs', '1', '--backend', 'cpu'];

function latin1Csv(file: string): void {
  const lines = ['x,group,label'];
  for (let i = 0; i < 40; i++) lines.push(`${i % 7},${i % 2 ? 'Björk' : 'Bjärk'},${i % 3 === 0 ? 1 : 0}`);
  fs.writeFileSync(file, Buffer.from(lines.join('\n') + '\n', 'latin1'));
}

test('a Latin-1 CSV (groups Björk and Bjärk) stops with the row, the byte offset and "save it as UTF-8"', async () => {
  const dir = tempDir();
  const csv = path.join(dir, 'people.csv');
  latin1Csv(csv);
  const bytes = fs.readFileSync(csv);
  const offset = bytes.indexOf(0xe4); // 'ä' in Latin-1, first on data row 1 (Bjärk)
  assert.throws(
    () => readCsvFile(csv),
    expectUserError(
      new RegExp(
        `people\\.csv, row 1: byte ${offset} \\(line 2\\) is not UTF-8 \\(bytes e4 72 6b 2c\\).*Fix: save it as UTF-8`,
      ),
    ),
  );
  assert.throws(() => readCsvHeader(csv), expectUserError(/row 1: byte \d+ \(line 2\) is not UTF-8/));
  const r = fairprune(['train', '--data', 'people.csv', ...TRAIN, '--out', 'model'], dir);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /^error: .*people\.csv, row 1: byte \d+ \(line 2\) is not UTF-8.*Fix: save it as UTF-8/m);
  assert.equal(fs.existsSync(path.join(dir, 'model')), false, 'no model was written');
  // the same file as UTF-8 keeps the two groups apart
  fs.writeFileSync(csv, bytes.toString('latin1'));
  const ok = fairprune(['train', '--data', 'people.csv', ...TRAIN, '--out', 'model'], dir);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /group=Bjärk .*group=Björk /);
});

test('a non-UTF-8 byte later in the file names its row; one in the header says so', () => {
  const dir = tempDir();
  const later = path.join(dir, 'later.csv');
  fs.writeFileSync(
    later,
    Buffer.concat([Buffer.from('a,b\n1,"x\ny"\n2,z\n\n3,'), Buffer.from([0x96]), Buffer.from('\n')]),
  );
  assert.throws(() => readCsvFile(later), expectUserError(/row 3: byte 19 \(line 6\) is not UTF-8 \(bytes 96 0a\)/));
  const header = path.join(dir, 'header.csv');
  fs.writeFileSync(header, Buffer.concat([Buffer.from('na'), Buffer.from([0xef, 0xbf]), Buffer.from('me\n1\n')]));
  assert.throws(() => readCsvFile(header), expectUserError(/header\.csv: byte 2 \(line 1, the header\) is not UTF-8/));
});

test('firstInvalidUtf8: valid text, stray bytes, cut sequences, overlong forms, surrogates, past U+10FFFF', () => {
  assert.equal(firstInvalidUtf8(Buffer.from('plain, Björk, 東京, 😀')), -1);
  const cases: [number[], number][] = [
    [[0x61, 0xe4, 0x62], 1], // Latin-1 ä
    [[0x61, 0xc3], 1], // cut
    [[0xc0, 0xaf], 0], // overlong '/'
    [[0xe0, 0x80, 0xaf], 0], // overlong
    [[0xed, 0xa0, 0x80], 0], // surrogate D800
    [[0xf4, 0x90, 0x80, 0x80], 0], // U+110000
    [[0x80], 0], // lone continuation
  ];
  for (const [bytes, at] of cases)
    assert.equal(firstInvalidUtf8(Uint8Array.from(bytes)), at, bytes.map((b) => b.toString(16)).join(' '));
});

test('missing-value spellings of pandas and R are missing; a NaN in a used number column is an error naming the row', async () => {
  for (const v of ['', 'NA', 'N/A', 'NaN', 'nan', 'null', 'NULL', 'None', '<NA>', '#N/A']) assert.ok(isMissing(v), v);
  for (const v of ['0', 'na', 'none', 'Nan1', 'n/a ', 'NAN']) assert.ok(!isMissing(v), v);
  const t = parseCsv('a,b\n1,NaN\n2,"None"\n', 'f.csv');
  assert.ok(isMissing(t.rows[0][1]) && isMissing(t.rows[1][1]));

  const dir = tempDir();
  const lines = ['x,income,group,label'];
  for (let i = 0; i < 40; i++)
    lines.push(`${i % 7},${i === 16 ? 'NaN' : (1000 + 37 * i).toString()},${i % 2 ? 'a' : 'b'},${i % 3 === 0 ? 1 : 0}`);
  fs.writeFileSync(path.join(dir, 'nan.csv'), lines.join('\n') + '\n');
  const header = readCsvHeader(path.join(dir, 'nan.csv'));
  const income = header.summaries.find((s) => s.name === 'income')!;
  assert.equal(income.numeric, true, 'NaN does not make the column text');
  assert.equal(income.missing, 1);
  await assert.rejects(
    loadDatasetForTraining({ csvPath: path.join(dir, 'nan.csv'), label: 'label', groups: ['group'], seed: 1 }),
    expectUserError(
      /row 17, 'income': the feature column 'income' has a missing value \('NaN'; empty, NA, N\/A, NaN, null and None all mean missing\)/,
    ),
  );
  const r = fairprune(['train', '--data', 'nan.csv', ...TRAIN, '--out', 'model'], dir);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^error: .*nan\.csv, row 17, 'income': the feature column 'income' has a missing value/m);
  assert.doesNotMatch(r.stderr, /not seen in training|did not see/);
});

test('a number column with a few stray texts is an error naming them, never one-hot encoded', async () => {
  const dir = tempDir();
  const write = (name: string, stray: (i: number) => string | undefined) => {
    const lines = ['x,income,group,label'];
    for (let i = 0; i < 40; i++)
      lines.push(`${i % 7},${stray(i) ?? 1000 + 37 * i},${i % 2 ? 'a' : 'b'},${i % 3 === 0 ? 1 : 0}`);
    fs.writeFileSync(path.join(dir, name), lines.join('\n') + '\n');
    return path.join(dir, name);
  };
  const few = write('few.csv', (i) => (i === 4 ? '?' : i === 9 ? 'unknown' : i === 30 ? '?' : undefined));
  await assert.rejects(
    loadDatasetForTraining({ csvPath: few, label: 'label', groups: ['group'], seed: 1 }),
    expectUserError(
      /row 5, 'income': the feature column 'income' holds numbers except in 3 rows: '\?' \(row 5\), 'unknown' \(row 10\)\./,
    ),
  );
  const r = fairprune(['train', '--data', 'few.csv', ...TRAIN, '--out', 'model'], dir);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /holds numbers except in 3 rows.*Fix: correct those values/);
  // a real text column (most values are words) is still one-hot encoded
  const words = write('words.csv', (i) => (i % 4 ? ['low', 'mid', 'high'][i % 3] : undefined));
  const { preprocessing } = await loadDatasetForTraining({
    csvPath: words,
    label: 'label',
    groups: ['group'],
    seed: 1,
  });
  assert.equal(preprocessing.columns!.find((c) => c.column === 'income')!.kind, 'onehot');
});

test('--out naming an existing file, or a path inside one, is a one-line error; the file is untouched', async () => {
  const dir = tempDir();
  const lines = ['x1,x2,group,label'];
  for (let i = 0; i < 40; i++) lines.push(`${(i % 7) / 7},${(i % 5) / 5},${i % 2 ? 'a' : 'b'},${i % 3 === 0 ? 1 : 0}`);
  fs.writeFileSync(path.join(dir, 'data.csv'), lines.join('\n') + '\n');
  await writeSmallKerasH5(path.join(dir, 'model.h5'));
  fs.writeFileSync(path.join(dir, 'notes.txt'), 'keep me\n');
  const before = sha256(fs.readFileSync(path.join(dir, 'notes.txt')));
  const run = fairprune(
    [
      'run',
      '--model',
      'model.h5',
      '--data',
      'data.csv',
      '--label',
      'label',
      '--group',
      'group',
      '--backend',
      'cpu',
      '--out',
      'notes.txt',
    ],
    dir,
  );
  assert.equal(run.code, 1);
  assert.match(
    run.stderr,
    /^error: .*notes\.txt, '--out': is a file, not a folder\. Fix: give a folder for the results/m,
  );
  assert.doesNotMatch(run.stderr, /\n\s+at /);
  const inside = fairprune(
    [
      'run',
      '--model',
      'model.h5',
      '--data',
      'data.csv',
      '--label',
      'label',
      '--group',
      'group',
      '--backend',
      'cpu',
      '--out',
      'notes.txt/runs',
    ],
    dir,
  );
  assert.equal(inside.code, 1);
  assert.match(inside.stderr, /notes\.txt\/runs, '--out': lies inside '.*notes\.txt', which is a file, not a folder\./);
  const train = fairprune(['train', '--data', 'data.csv', ...TRAIN, '--out', 'notes.txt'], dir);
  assert.equal(train.code, 1);
  assert.match(train.stderr, /^error: .*notes\.txt, '--out': is a file, not a folder\./m);
  assert.equal(sha256(fs.readFileSync(path.join(dir, 'notes.txt'))), before);
});
