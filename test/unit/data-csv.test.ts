import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { parseCsv, readCsvHeader, readCsvFile, isMissing, parseNumber } from '../../src/core/data/csv';
import { loadDataset } from '../../src/core/data/dataset';
import { UserError } from '../../src/core/errors';

function tmpFile(name: string, content: string | Buffer): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fp-data-csv-'));
  const p = path.join(dir, name);
  fs.writeFileSync(p, content);
  return p;
}

test('RFC 4180: quoted commas, escaped quotes, line breaks inside quotes, CRLF, BOM', () => {
  const text = '\ufeffa,"b c",d\r\n"x, y","say ""hi""","two\r\nlines"\r\n1,,NA\r\n';
  const t = parseCsv(text, 'f.csv');
  assert.deepEqual(t.columns, ['a', 'b c', 'd']);
  assert.deepEqual(t.rows, [
    ['x, y', 'say "hi"', 'two\r\nlines'],
    ['1', '', 'NA'],
  ]);
  // the second data record starts on line 4 of the file because of the quoted line break
  assert.deepEqual(t.lines, [2, 4]);
});

test('LF and lone CR line ends, no final newline, trailing empty field, blank lines skipped', () => {
  assert.deepEqual(parseCsv('a,b\n1,2\n3,', 'f').rows, [
    ['1', '2'],
    ['3', ''],
  ]);
  assert.deepEqual(parseCsv('a,b\r1,2\r3,4', 'f').rows, [
    ['1', '2'],
    ['3', '4'],
  ]);
  const t = parseCsv('a,b\n1,2\n\n3,4\n\n', 'f');
  assert.deepEqual(t.rows, [
    ['1', '2'],
    ['3', '4'],
  ]);
  assert.deepEqual(t.lines, [2, 4]);
  // spaces around unquoted fields are trimmed, quoted fields are kept exactly
  assert.deepEqual(parseCsv('a, b\n 1 ," 2 "\n', 'f').rows, [['1', ' 2 ']]);
});

test("R's write.csv output: quoted strings, bare numbers, bare NA, unnamed row-name column", async () => {
  // write.csv(data.frame(y=c("a","b","a","b"), g=c("u","u","v","v"), x=c(1.5,NA,3,4))) with row names
  const csv = '"","y","g","x"\n"1","a","u",1.5\n"2","b","u",NA\n"3","a","v",3\n"4","b","v",4\n';
  const t = parseCsv(csv, 'r.csv');
  assert.deepEqual(t.columns, ['', 'y', 'g', 'x']);
  assert.equal(t.rows[1][3], 'NA');
  assert.ok(isMissing(t.rows[1][3]) && isMissing('') && !isMissing('0') && !isMissing('na'));
  // the row-name column is not a feature; the NA in a used feature column is an error naming row and column
  const file = tmpFile('r.csv', csv);
  await assert.rejects(
    loadDataset(
      { csvPath: file, label: 'y', groups: ['g'], seed: 1, splitFractions: { train: 0.5, validation: 0, test: 0.5 } },
      { inputShape: [1], outputUnits: 1 },
    ),
    (e: unknown) => e instanceof UserError && e.row === 2 && e.field === 'x' && /missing value/.test(e.message),
  );
  const fixed = tmpFile('r2.csv', csv.replace('NA', '2'));
  const d = await loadDataset(
    { csvPath: fixed, label: 'y', groups: ['g'], seed: 1, splitFractions: { train: 0.5, validation: 0, test: 0.5 } },
    { inputShape: [1], outputUnits: 1 },
  );
  assert.deepEqual(d.record.features, ['x']);
  assert.deepEqual([...d.x], [1.5, 2, 3, 4]);
  assert.ok(d.record.warnings.some((w) => /no name/.test(w)));
});

test('numbers: plain decimal notation only', () => {
  assert.equal(parseNumber('-1.5e3'), -1500);
  assert.equal(parseNumber('.5'), 0.5);
  assert.equal(parseNumber('7.'), 7);
  for (const s of ['', 'NaN', 'Inf', 'Infinity', '0x10', '1,5', 'abc', '1 2'])
    assert.ok(Number.isNaN(parseNumber(s)), s);
});

test('malformed files are UserErrors naming the problem', () => {
  const err = (text: string, re: RegExp) =>
    assert.throws(
      () => parseCsv(text, 'bad.csv'),
      (e: unknown) => e instanceof UserError && re.test(e.message) && e.message.startsWith('bad.csv'),
    );
  err('a,b\n"1,2\n', /never ends/);
  err('a,b\n"1"x,2\n', /text follows a closing quote/);
  err('a,b\n1,2,3\n', /line 2 has 3 fields; the header has 2/);
  err('a,a\n1,2\n', /names column 'a' twice/);
  err('a;b;c\n1;2;3\n', /separated by ;/);
  err('', /empty/);
  assert.throws(
    () => readCsvFile(path.join(os.tmpdir(), 'fp-no-such-file.csv')),
    (e: unknown) => e instanceof UserError && /does not exist/.test(e.message),
  );
  const utf16 = tmpFile('u16.csv', Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('a,b\n', 'utf16le')]));
  assert.throws(() => readCsvFile(utf16), /UTF-16/);
});

test('readCsvHeader: columns, distinct counts of small columns, numeric and image flags; reads only the start of big files', () => {
  const rows = ['id,colour,score,img'];
  for (let i = 0; i < 200; i++) rows.push(`${i},"${i % 3 === 0 ? 'Black' : 'White'}",${i / 10},im/${i}.png`);
  const file = tmpFile('h.csv', rows.join('\n') + '\n');
  const h = readCsvHeader(file);
  assert.deepEqual(h.columns, ['id', 'colour', 'score', 'img']);
  assert.equal(h.rowsRead, 200);
  assert.equal(h.complete, true);
  const colour = h.summaries[1];
  assert.deepEqual(colour.values, { Black: 67, White: 133 });
  assert.equal(colour.numeric, false);
  assert.equal(h.summaries[0].numeric, true);
  assert.equal(h.summaries[0].values, undefined); // 200 distinct: too many to list
  assert.ok(h.summaries[0].distinct > 20);
  assert.equal(h.summaries[3].images, true);
  const part = readCsvHeader(file, { maxBytes: 300 });
  assert.equal(part.complete, false);
  assert.ok(part.rowsRead > 0 && part.rowsRead < 200);
  // every row read is a whole row
  const expectRows = part.rowsRead;
  assert.equal(
    Object.values(part.summaries[1].values!).reduce((a, b) => a + b, 0),
    expectRows,
  );
});
