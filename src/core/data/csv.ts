/**
 * CSV reading (RFC 4180): comma separated, fields optionally in double quotes, `""` inside quotes is
 * one quote, quoted fields may hold commas and line breaks, lines end in LF, CRLF or CR, a UTF-8 byte
 * order mark is dropped. R's `write.csv` output (quoted strings, bare numbers, bare `NA`, an unnamed
 * first column of row names) reads as R wrote it. Blank lines are skipped and not counted, so data
 * row N is the N-th record after the header (pandas' index N−1). Spaces around an unquoted field are
 * trimmed; a quoted field is kept exactly.
 */
import * as fs from 'fs';
import { UserError } from '../errors';

export interface CsvTable {
  /** Header names, trimmed. */
  columns: string[];
  /** Data records (header excluded), each with exactly `columns.length` fields. */
  rows: string[][];
  /** 1-based line of the file where each data record starts (for messages). */
  lines: number[];
  /** False when `maxBytes` cut the file: `rows` are the complete records before the cut. */
  complete: boolean;
}

/**
 * The spellings of a missing value that pandas, R, NumPy, SQL exports and Python write: an empty cell,
 * `NA`, `N/A`, `NaN`, `nan`, `null`, `NULL`, `None`, `<NA>`, `#N/A` (quoted or not).
 */
export const MISSING_SPELLINGS: readonly string[] = [
  '',
  'NA',
  'N/A',
  'NaN',
  'nan',
  'null',
  'NULL',
  'None',
  '<NA>',
  '#N/A',
];
const MISSING = new Set(MISSING_SPELLINGS);

/** A missing value (see MISSING_SPELLINGS). */
export function isMissing(value: string): boolean {
  return MISSING.has(value);
}

/** Parses a finite number the way a CSV writer writes it (`3`, `-0.5`, `1e-3`); anything else is NaN. */
export function parseNumber(value: string): number {
  if (value === '') return NaN;
  // Number() accepts '0x1f', ' ', 'Infinity': only plain decimal notation counts as a number here.
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(value)) return NaN;
  const n = Number(value);
  return Number.isFinite(n) ? n : NaN;
}

/**
 * Parses CSV text. `file` is only for messages. With `partial`, an unfinished last record (a cut
 * file) is dropped instead of reported.
 */
export function parseCsv(text: string, file: string, options: { partial?: boolean } = {}): CsvTable {
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const records: string[][] = [];
  const lines: number[] = [];
  const n = text.length;
  let i = 0;
  let line = 1;
  let complete = true;
  while (i < n) {
    const startLine = line;
    const fields: string[] = [];
    let endOfRecord = false;
    while (!endOfRecord) {
      let c = 0;
      // leading spaces/tabs of an unquoted field (or before an opening quote)
      let j = i;
      while (j < n && (text.charCodeAt(j) === 32 || text.charCodeAt(j) === 9)) j++;
      if (j < n && text.charCodeAt(j) === 34 /* " */) {
        i = j + 1;
        let value = '';
        let chunkStart = i;
        const quoteLine = line;
        for (;;) {
          if (i >= n) {
            if (options.partial) {
              complete = false;
              return finish(records, lines, file, complete);
            }
            throw new UserError(`a quoted field that starts on line ${quoteLine} never ends (a " is missing).`, {
              file,
              fix: 'close the quote, or write a quote inside a quoted field as two quotes ("").',
            });
          }
          c = text.charCodeAt(i);
          if (c === 34) {
            if (i + 1 < n && text.charCodeAt(i + 1) === 34) {
              value += text.slice(chunkStart, i + 1);
              i += 2;
              chunkStart = i;
              continue;
            }
            value += text.slice(chunkStart, i);
            i++;
            break;
          }
          if (c === 10) line++;
          else if (c === 13 && text.charCodeAt(i + 1) !== 10) line++;
          i++;
        }
        // after the closing quote: optional spaces, then a comma or the end of the record
        while (i < n && (text.charCodeAt(i) === 32 || text.charCodeAt(i) === 9)) i++;
        fields.push(value);
        if (i >= n) {
          endOfRecord = true;
        } else {
          c = text.charCodeAt(i);
          if (c === 44) {
            i++;
          } else if (c === 10 || c === 13) {
            i += c === 13 && text.charCodeAt(i + 1) === 10 ? 2 : 1;
            line++;
            endOfRecord = true;
          } else {
            throw new UserError(`line ${line}: text follows a closing quote (field ${fields.length}).`, {
              file,
              fix: 'quote the whole field, and write a quote inside it as two quotes ("").',
            });
          }
        }
      } else {
        let k = i;
        while (k < n) {
          c = text.charCodeAt(k);
          if (c === 44 || c === 10 || c === 13) break;
          k++;
        }
        fields.push(text.slice(i, k).trim());
        if (k >= n) {
          i = k;
          endOfRecord = true;
        } else if (c === 44) {
          i = k + 1;
        } else {
          i = k + (c === 13 && text.charCodeAt(k + 1) === 10 ? 2 : 1);
          line++;
          endOfRecord = true;
        }
      }
      if (!endOfRecord && i >= n) {
        // "a,b," at the very end: a last empty field
        fields.push('');
        endOfRecord = true;
      }
    }
    if (fields.length === 1 && fields[0] === '') continue; // blank line
    const lastChar = text.charCodeAt(n - 1);
    if (options.partial && i >= n && lastChar !== 10 && lastChar !== 13) {
      // the last line of a cut file may be incomplete
      complete = false;
      break;
    }
    records.push(fields);
    lines.push(startLine);
  }
  return finish(records, lines, file, complete);
}

function finish(records: string[][], lines: number[], file: string, complete: boolean): CsvTable {
  if (records.length === 0) {
    throw new UserError('the file is empty: it needs a header row naming the columns.', {
      file,
      fix: 'export the data with a header row.',
    });
  }
  const columns = records[0].map((c) => c.trim());
  const seen = new Map<string, number>();
  columns.forEach((c, k) => {
    if (c !== '' && seen.has(c)) {
      throw new UserError(`the header names column '${c}' twice (columns ${seen.get(c)! + 1} and ${k + 1}).`, {
        file,
        field: c,
        fix: 'give every column a different name.',
      });
    }
    seen.set(c, k);
  });
  if (columns.length === 1 && /[;\t|]/.test(columns[0])) {
    const sep = columns[0].includes(';') ? ';' : columns[0].includes('\t') ? 'tab' : '|';
    throw new UserError(
      `the header has a single column '${columns[0]}': the file looks separated by ${sep}, not by commas.`,
      {
        file,
        fix: 'save it as comma-separated values (CSV).',
      },
    );
  }
  const rows = records.slice(1);
  const rowLines = lines.slice(1);
  for (let r = 0; r < rows.length; r++) {
    if (rows[r].length !== columns.length) {
      throw new UserError(`line ${rowLines[r]} has ${rows[r].length} fields; the header has ${columns.length}.`, {
        file,
        row: r + 1,
        fix: 'give every row one value per header column (quote values that contain commas).',
      });
    }
  }
  return { columns, rows, lines: rowLines, complete };
}

/** Reads and parses a CSV file; returns the table and the raw bytes (for hashing). */
export function readCsvFile(csvPath: string): { table: CsvTable; bytes: Buffer } {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(csvPath);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError(
      code === 'ENOENT' ? 'the data file does not exist.' : `the data file cannot be read (${code ?? String(e)}).`,
      {
        file: csvPath,
        fix: 'check the path of the CSV file.',
      },
    );
  }
  return { table: parseCsv(decodeText(bytes, csvPath), csvPath), bytes };
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * The offset of the first byte that is not part of valid UTF-8 (overlong forms, surrogates and code
 * points past U+10FFFF included), or -1.
 */
export function firstInvalidUtf8(b: Uint8Array): number {
  let i = 0;
  const n = b.length;
  while (i < n) {
    const c = b[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    let len: number;
    let min: number;
    if (c >= 0xc2 && c <= 0xdf) [len, min] = [2, 0x80];
    else if (c >= 0xe0 && c <= 0xef) [len, min] = [3, 0x800];
    else if (c >= 0xf0 && c <= 0xf4) [len, min] = [4, 0x10000];
    else return i;
    if (i + len > n) return i;
    let cp = c & (0xff >> (len + 1));
    for (let k = 1; k < len; k++) {
      if ((b[i + k] & 0xc0) !== 0x80) return i;
      cp = (cp << 6) | (b[i + k] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
    i += len;
  }
  return -1;
}

/**
 * The file's text, decoded strictly as UTF-8: a byte that is not UTF-8 (a Latin-1 `ä`, a Windows-1252
 * quote) stops the read with its row and byte offset, since decoding it as U+FFFD would merge
 * different values (`Björk` and `Bjärk` would become one group).
 */
function decodeText(bytes: Buffer, file: string): string {
  if ((bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff)) {
    throw new UserError('the file is UTF-16 text; CSV files are read as UTF-8.', {
      file,
      fix: 'save the CSV as UTF-8.',
    });
  }
  try {
    return strictUtf8.decode(bytes);
  } catch {
    const at = firstInvalidUtf8(bytes);
    const before = bytes.subarray(0, Math.max(at, 0));
    const line = before.reduce((k, byte) => k + (byte === 10 ? 1 : 0), 1);
    const lineStart = before.lastIndexOf(10) + 1;
    let row: number | undefined; // undefined: the bad byte is in the header
    if (lineStart > 0) {
      try {
        row = parseCsv(strictUtf8.decode(bytes.subarray(0, lineStart)), file, { partial: true }).rows.length + 1;
      } catch {
        row = undefined; // the text before it is not CSV either: the line number says where
      }
    }
    const shown = Array.from(bytes.subarray(at, at + 4))
      .map((x) => x.toString(16).padStart(2, '0'))
      .join(' ');
    throw new UserError(
      `byte ${at.toLocaleString('en')} ` +
        `(line ${line}${lineStart === 0 ? ', the header' : ''}) ` +
        `is not UTF-8 (bytes ${shown}): the file is in another encoding, ` +
        'such as Latin-1 or Windows-1252, whose letters would be misread.',
      {
        file,
        row,
        fix: 'save it as UTF-8 (in Excel: "CSV UTF-8"; in pandas: to_csv(..., encoding="utf-8")).',
      },
    );
  }
}

export interface ColumnSummary {
  name: string;
  /** Distinct non-missing values in the rows read, counted up to `distinctLimit` + 1. */
  distinct: number;
  /** Value → count, when the column has at most `distinctLimit` distinct values. */
  values?: Record<string, number>;
  missing: number;
  /** Every non-missing value is a number. */
  numeric: boolean;
  /** Every non-missing value is a file name ending in .png, .jpg, .jpeg or .webp. */
  images: boolean;
}

export interface CsvHeader {
  columns: string[];
  summaries: ColumnSummary[];
  /** Data rows read (all of them when `complete`). */
  rowsRead: number;
  complete: boolean;
}

export const IMAGE_FILE = /\.(png|jpe?g|webp)$/i;

/**
 * The header and a cheap summary of each column (for pickers): reads at most `maxBytes` of the file
 * (default 4 MiB), so on a large file the counts are from its first rows (`complete` is false).
 */
export function readCsvHeader(csvPath: string, options: { maxBytes?: number; distinctLimit?: number } = {}): CsvHeader {
  const maxBytes = options.maxBytes ?? 4 * 1024 * 1024;
  const limit = options.distinctLimit ?? 20;
  let fd: number;
  try {
    fd = fs.openSync(csvPath, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError(
      code === 'ENOENT' ? 'the data file does not exist.' : `the data file cannot be read (${code}).`,
      {
        file: csvPath,
        fix: 'check the path of the CSV file.',
      },
    );
  }
  let buf: Buffer;
  let whole: boolean;
  try {
    const size = fs.fstatSync(fd).size;
    const len = Math.min(size, maxBytes);
    buf = Buffer.alloc(len);
    let got = 0;
    while (got < len) {
      const k = fs.readSync(fd, buf, got, len - got, got);
      if (k === 0) break;
      got += k;
    }
    buf = buf.subarray(0, got);
    whole = got >= size;
  } finally {
    fs.closeSync(fd);
  }
  if (!whole) {
    // drop the last, possibly cut line (and a cut UTF-8 sequence in it); a newline byte is never
    // part of a multi-byte sequence
    const last = buf.lastIndexOf(10);
    buf = last >= 0 ? buf.subarray(0, last + 1) : buf;
  }
  const text = decodeText(buf, csvPath);
  const table = parseCsv(text, csvPath, { partial: !whole });
  const summaries: ColumnSummary[] = table.columns.map((name, c) => {
    const counts = new Map<string, number>();
    let missing = 0;
    let numeric = true;
    let images = true;
    let present = 0;
    for (const row of table.rows) {
      const v = row[c];
      if (isMissing(v)) {
        missing++;
        continue;
      }
      present++;
      if (numeric && Number.isNaN(parseNumber(v))) numeric = false;
      if (images && !IMAGE_FILE.test(v)) images = false;
      if (counts.size <= limit) counts.set(v, (counts.get(v) ?? 0) + 1);
      else if (counts.has(v)) counts.set(v, counts.get(v)! + 1);
    }
    const s: ColumnSummary = {
      name,
      distinct: counts.size,
      missing,
      numeric: numeric && present > 0,
      images: images && present > 0,
    };
    if (counts.size <= limit)
      s.values = Object.fromEntries([...counts.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)));
    return s;
  });
  return { columns: table.columns, summaries, rowsRead: table.rows.length, complete: whole && table.complete };
}
