#!/usr/bin/env node
/**
 * A biased image task the demo does not use, for measuring the group-aware objectives on data they were
 * not tuned on (issue 18): grey MNIST digits, the subgroup is the background. `clean` digits are dark
 * ink on white; `noisy` digits (5% of training and validation, half of test) carry Gaussian pixel noise
 * and a few random grey strokes, so the rare group is intrinsically harder, not only rarer.
 *
 *   node bench/noisy-digits.cjs OUT_DIR [--seed N]
 *
 * writes OUT_DIR/data.csv (image, digit, background, split) and OUT_DIR/images/*.png. Then, e.g.:
 *   node dist/cli.js train --data OUT_DIR/data.csv --label digit --group background --out OUT_DIR/model --epochs 6
 *   node dist/cli.js run --model OUT_DIR/model/model.json --data OUT_DIR/data.csv --label digit --group background \
 *       --sparsity 0.9 --epochs 3 --loss ce,group-balanced,group-dro,ceag --seeds 3
 */
const fs = require('fs');
const path = require('path');
const sharp = require('sharp');

const out = process.argv[2];
if (!out) {
  console.error('usage: node bench/noisy-digits.cjs OUT_DIR [--seed N]');
  process.exit(2);
}
const seedAt = process.argv.indexOf('--seed');
let state = (seedAt > 0 ? Number(process.argv[seedAt + 1]) : 11) >>> 0 || 1;
/** xorshift32, seeded: the same data for the same seed. */
const next = () => {
  state ^= state << 13;
  state >>>= 0;
  state ^= state >>> 17;
  state ^= state << 5;
  state >>>= 0;
  return state / 4294967296;
};
const normal = () => Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next());

const dir = path.join(path.dirname(require.resolve('mnist/package.json')), 'src', 'digits');
const digits = Array.from(
  { length: 10 },
  (_, d) => JSON.parse(fs.readFileSync(path.join(dir, `${d}.json`), 'utf8')).data,
);
const SIZE = 28;
const PIXELS = SIZE * SIZE;
const plan = { train: [5000, 0.05], validation: [800, 0.05], test: [2000, 0.5] };

function render(raw, start, noisy) {
  const px = new Uint8Array(PIXELS);
  const v = new Float64Array(PIXELS);
  for (let i = 0; i < PIXELS; i++) v[i] = 1 - raw[start + i]; // dark ink on white
  if (noisy) {
    for (let s = 0; s < 3; s++) {
      // a grey stroke: a short random line
      let x = next() * SIZE;
      let y = next() * SIZE;
      const a = next() * Math.PI;
      const grey = 0.3 + 0.4 * next();
      for (let t = 0; t < 14; t++) {
        const xi = Math.round(x);
        const yi = Math.round(y);
        if (xi >= 0 && xi < SIZE && yi >= 0 && yi < SIZE) v[yi * SIZE + xi] = Math.min(v[yi * SIZE + xi], grey);
        x += Math.cos(a);
        y += Math.sin(a);
      }
    }
    for (let i = 0; i < PIXELS; i++) v[i] += 0.35 * normal();
  }
  for (let i = 0; i < PIXELS; i++) px[i] = Math.max(0, Math.min(255, Math.round(v[i] * 255)));
  return px;
}

async function main() {
  fs.mkdirSync(path.join(out, 'images'), { recursive: true });
  const order = [];
  for (let d = 0; d < 10; d++) for (let k = 0; k < digits[d].length / PIXELS; k++) order.push([d, k]);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  const lines = ['image,digit,background,split'];
  let at = 0;
  for (const [split, [count, rare]] of Object.entries(plan)) {
    for (let i = 0; i < count; i++) {
      const [d, k] = order[at++];
      const noisy = next() < rare;
      const name = `images/${split}-${i}.png`;
      await sharp(Buffer.from(render(digits[d], k * PIXELS, noisy)), {
        raw: { width: SIZE, height: SIZE, channels: 1 },
      })
        .png()
        .toFile(path.join(out, name));
      lines.push(`${name},${d},${noisy ? 'noisy' : 'clean'},${split}`);
    }
  }
  fs.writeFileSync(path.join(out, 'data.csv'), `${lines.join('\n')}\n`);
  console.log(`wrote ${lines.length - 1} images to ${out}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
