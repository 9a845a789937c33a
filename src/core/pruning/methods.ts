/**
 * Every pruning method Fair Prune knows, in one table: its kind, what deciding which weights go
 * needs, how it scores, whether the model shrinks, and the function that scores.
 *
 * Adding a method: its name in `PRUNING_METHOD_NAMES` (src/protocol/results.ts, which results.json
 * and the settings' enum are checked against), one entry below, and its function — keep-masks over
 * the kernels for an unstructured method (unstructured.ts), per-channel scores for a structured one
 * (src/core/structured/criteria.ts). The engine does not compile while a name lacks an entry, and
 * test/unit/pruning-methods.test.ts fails while package.json's `fairPrune.method` enum differs.
 * Nothing else lists methods: the CLI, the session, the sweep and the help text read this table.
 */
import type * as tfl from '@tensorflow/tfjs-layers';
import type { PruningMethodName } from '../../protocol/results';
import { PRUNING_METHOD_NAMES } from '../../protocol/results';
import { UserError } from '../errors';
import type { Rng } from '../rng';
import type { ChannelGroup } from '../structured/graph';
import type { TaylorData } from '../structured/criteria';
import { l1Scores, taylorScores } from '../structured/criteria';
import type { KernelValues } from './unstructured';
import { magnitudeGlobalMasks, magnitudeLayerMasks, randomMasks } from './unstructured';

export type { KernelValues };

/** What a method reads to decide which weights go, besides the weights themselves. */
export type MethodNeed = 'weights' | 'random numbers' | 'training rows' | 'gradients of the fine-tuning loss';

interface MethodInfo {
  readonly name: PruningMethodName;
  /** unstructured: single weights are zeroed; structured: whole filters/units are removed. */
  readonly kind: 'unstructured' | 'structured';
  readonly needs: readonly MethodNeed[];
  /** How it scores, in a sentence a user of pruning reads (the help text shows it). */
  readonly scores: string;
  /** Whether a physically smaller model is saved beside the masked one (points/<point>/shrunk/). */
  readonly shrinks: boolean;
}

export interface UnstructuredMethod extends MethodInfo {
  readonly kind: 'unstructured';
  readonly shrinks: false;
  /** Keep-masks (1 keep, 0 prune), one per kernel, removing `sparsity` of the weights. */
  masks(kernels: KernelValues[], sparsity: number, rng: Rng): Uint8Array[];
}

export interface StructuredMethod extends MethodInfo {
  readonly kind: 'structured';
  readonly shrinks: true;
  /** Importance of every channel of every group (higher keeps); `data` is given when `needs` has training rows. */
  channelScores(model: tfl.LayersModel, groups: ChannelGroup[], data?: TaylorData): Float64Array[];
}

export type PruningMethod = UnstructuredMethod | StructuredMethod;

/** Entries typed by kind, so `PRUNING_METHODS.random.masks` needs no narrowing. */
const unstructured = (m: UnstructuredMethod): UnstructuredMethod => m;
const structured = (m: StructuredMethod): StructuredMethod => m;

export const PRUNING_METHODS = {
  'magnitude-layer': unstructured({
    name: 'magnitude-layer',
    kind: 'unstructured',
    needs: ['weights'],
    scores: 'smallest |w| in each layer, every layer to the same sparsity',
    shrinks: false,
    masks: magnitudeLayerMasks,
  }),
  'magnitude-global': unstructured({
    name: 'magnitude-global',
    kind: 'unstructured',
    needs: ['weights'],
    scores: 'smallest |w| across all layers together',
    shrinks: false,
    masks: magnitudeGlobalMasks,
  }),
  random: unstructured({
    name: 'random',
    kind: 'unstructured',
    needs: ['random numbers'],
    scores: 'random weights, as many per layer as magnitude-layer (the control)',
    shrinks: false,
    masks: randomMasks,
  }),
  'l1-filter': structured({
    name: 'l1-filter',
    kind: 'structured',
    needs: ['weights'],
    scores: 'whole filters/units with the smallest mean |w| (Li et al. 2017)',
    shrinks: true,
    channelScores: (model, groups) => l1Scores(model, groups),
  }),
  'taylor-filter': structured({
    name: 'taylor-filter',
    kind: 'structured',
    needs: ['training rows', 'gradients of the fine-tuning loss'],
    scores:
      'whole filters/units with the smallest first-order Taylor importance |Σ a·∂L/∂a| under the ' +
      "fine-tuning loss, PW's weights and targets included (Molchanov et al. 2017, as PW's authors prune)",
    shrinks: true,
    channelScores: (model, groups, data) => {
      if (!data) throw new Error('taylor-filter scores channels on training rows: pass them');
      return taylorScores(model, groups, data);
    },
  }),
} satisfies Record<PruningMethodName, PruningMethod>;

/** The table's entry for `name`; an unknown name is a UserError naming `field` and the known methods. */
export function pruningMethod(name: string, field = '--method'): PruningMethod {
  if (!(PRUNING_METHOD_NAMES as readonly string[]).includes(name)) {
    throw new UserError(`unknown pruning method '${name}'.`, {
      field,
      fix: `use one of ${PRUNING_METHOD_NAMES.join(', ')}.`,
    });
  }
  return PRUNING_METHODS[name as PruningMethodName];
}

/** The names of the methods of one kind, as a user would type them: `--method a or --method b`. */
export function methodOptions(kind: PruningMethod['kind']): string {
  return PRUNING_METHOD_NAMES.filter((n) => PRUNING_METHODS[n].kind === kind)
    .map((n) => `--method ${n}`)
    .join(' or ');
}
