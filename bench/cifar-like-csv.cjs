#!/usr/bin/env node
/**
 * A CIFAR-sized image CSV for timing fine-tuning of 32×32 RGB models such as the shared Keras ResNet-20
 * (issue 23): N rows of 3,072 pixel columns (0–1, row-major H × W × RGB), a `label` 0–9 and a `group`
 * a/b. Each image is a few soft coloured blobs on a tinted background whose colour depends on the label,
 * so the task is learnable, but the point is the speed (samples/s in results.json), not the accuracy.
 *
 *   node bench/cifar-like-csv.cjs OUT.csv [--rows 768] [--seed 7]
 *   node dist/cli.js run --model ../shared/models/h5-keras2.2.4-cifar10-resnet20-functional/cifar10_ResNet20v1_model.h5 \
 *       --data OUT.csv --label label --group group --sparsity 0.5 --loss ce --epochs 1 --workers 1 --out OUT_DIR
 */
const fs = require('fs');

const args = process.argv.slice(2);
const out = args[0];
if (!out || out.startsWith('--')) {
  console.error('usage: node bench/cifar-like-csv.cjs OUT.csv [--rows N] [--seed N]');
  process.exit(2);
}
const opt = (name, dflt) => (args.indexOf(name) > 0 ? Number(args[args.indexOf(name) + 1]) : dflt);
const rows = opt('--rows', 768);
let state = opt('--seed', 7) >>> 0 || 1;
/** xorshift32, seeded: the same file for the same seed. */
const next = () => {
  state ^= state << 13;
  state >>>= 0;
  state ^= state >>> 17;
  state ^= state << 5;
  state >>>= 0;
  return state / 4294967296;
};

const S = 32;
const header = ['label', 'group'];
for (let y = 0; y < S; y++) for (let x = 0; x < S; x++) for (const c of 'rgb') header.push(`p${y}_${x}_${c}`);
const lines = [header.join(',')];
const px = new Float32Array(S * S * 3);
for (let r = 0; r < rows; r++) {
  const label = Math.floor(next() * 10);
  const group = next() < 0.3 ? 'b' : 'a';
  const tint = [(label % 3) / 2, ((label >> 1) % 3) / 2, (label >> 2) % 2];
  for (let i = 0; i < S * S; i++) for (let c = 0; c < 3; c++) px[i * 3 + c] = 0.25 + 0.5 * tint[c] * 0.6 + 0.1 * next();
  const blobs = 2 + Math.floor(next() * 3);
  for (let b = 0; b < blobs; b++) {
    const cx = next() * S;
    const cy = next() * S;
    const rad = 3 + next() * 6;
    const colour = [next(), next(), next()];
    for (let y = 0; y < S; y++) {
      for (let x = 0; x < S; x++) {
        const w = Math.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * rad * rad));
        for (let c = 0; c < 3; c++) px[(y * S + x) * 3 + c] = px[(y * S + x) * 3 + c] * (1 - w) + colour[c] * w;
      }
    }
  }
  const cells = [String(label), group];
  for (const v of px) cells.push(Math.min(1, Math.max(0, v)).toFixed(3));
  lines.push(cells.join(','));
}
fs.writeFileSync(out, lines.join('\n') + '\n');
console.log(`wrote ${out}: ${rows} rows of 32×32×3 pixels`);
