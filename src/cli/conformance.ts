/** `npm run conformance -- DIR`: the project's losses against every reference vectors file in DIR. */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { checkVectors } from '../core/conformance';
import { UserError } from '../core/errors';

async function main(): Promise<number> {
  const dir = process.argv[2];
  if (!dir || dir === '--help') {
    console.log('usage: npm run conformance -- DIR   (checks every *.json vectors file in DIR)');
    return dir ? 0 : 2;
  }
  tf.enableProdMode();
  await tf.setBackend('cpu');
  const results = checkVectors(dir);
  let passed = 0;
  let failed = 0;
  for (const r of results) {
    if (r.passed) passed++;
    else failed++;
    const mark = r.passed ? 'ok  ' : 'FAIL';
    console.log(
      `${mark} ${r.caseName} ${r.quantity}  max |error| ${r.maxError.toExponential(2)} (tolerance ${r.tolerance})`,
    );
  }
  console.log(`${passed} passed, ${failed} failed`);
  return failed === 0 && passed > 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(e instanceof UserError ? `error: ${e.message}` : e);
    process.exit(2);
  },
);
