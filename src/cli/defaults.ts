/** Defaults of the command line, shared by `run`, `demo` and their help texts (src/protocol/defaults.ts). */
import type { BackendPreference } from '../protocol/results';

export { RUN_DEFAULTS } from '../protocol/defaults';

export const BACKENDS: BackendPreference[] = ['auto', 'tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'];
