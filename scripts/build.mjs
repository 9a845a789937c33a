// Bundles the Node entry points with esbuild. TensorFlow.js stays external (loaded from node_modules)
// so that exactly one copy of tfjs-core exists per process, also when @tensorflow/tfjs-node is
// installed and registers its native backend with it.
import * as fs from 'node:fs';
import * as esbuild from 'esbuild';

// h5wasm (Keras .h5/.keras) is an ES module with a 4 MB wasm payload, loaded with import() at run time.
const external = ['@tensorflow/*', 'sharp', 'vscode', 'h5wasm'];
const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  sourcemap: true,
  external,
  logLevel: 'warning',
};

await Promise.all([
  esbuild.build({ ...common, entryPoints: ['src/cli/main.ts'], outfile: 'dist/cli.js' }),
  esbuild.build({ ...common, entryPoints: ['src/cli/conformance.ts'], outfile: 'dist/conformance.js' }),
  esbuild.build({ ...common, entryPoints: ['src/engine/main.ts'], outfile: 'dist/engine.js' }),
  esbuild.build({ ...common, entryPoints: ['src/engine/native-preload.ts'], outfile: 'dist/native-preload.js' }),
  // Sweep points in parallel: each worker thread runs this file (found beside the bundle that starts it).
  esbuild.build({ ...common, entryPoints: ['src/core/sweep-worker.ts'], outfile: 'dist/sweep-worker.js' }),
  esbuild.build({ ...common, entryPoints: ['bench/bench.ts'], outfile: 'dist/bench.js' }),
  esbuild.build({ ...common, entryPoints: ['bench/profile.ts'], outfile: 'dist/profile.js' }),
  esbuild.build({ ...common, entryPoints: ['bench/webgpu.ts'], outfile: 'dist/webgpu.js' }),
  // The extension host bundle: no TensorFlow.js in it (training runs in dist/engine.js).
  esbuild.build({ ...common, entryPoints: ['src/extension/extension.ts'], outfile: 'dist/extension.js' }),
  // The webview pages (docs/webviews.md), each with its stylesheet beside it: the fairness curves panel
  // (Chart.js + VS Code Elements) and the side-bar fairness report (VS Code Elements' button only).
  ...['curves', 'report'].map((name) =>
    esbuild.build({
      entryPoints: [`webview/${name}.ts`],
      outfile: `dist/webview/${name}.js`,
      bundle: true,
      platform: 'browser',
      target: 'chrome114',
      format: 'iife',
      minify: true,
      sourcemap: true,
      logLevel: 'warning',
    }),
  ),
]);

// Fair Prune's own wasm SIMD kernels (built from src/core/kernels/simd/kernels.c by scripts/build-simd.sh
// and committed), next to the bundles that load them.
fs.copyFileSync('src/core/kernels/simd/kernels.wasm', 'dist/fair-prune-kernels.wasm');
// The demo's digits (scripts/make-demo-digits.mjs), read by the bundles that write the demo data set.
fs.copyFileSync('src/core/demo/mnist-digits.br', 'dist/mnist-digits.br');
