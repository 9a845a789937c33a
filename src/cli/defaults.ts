/** Defaults of the command line, shared by `run`, `demo` and their help texts (src/protocol/defaults.ts). */
import { BACKEND_PREFERENCES } from '../protocol/results';

export { RUN_DEFAULTS } from '../protocol/defaults';

export const BACKENDS = BACKEND_PREFERENCES;
