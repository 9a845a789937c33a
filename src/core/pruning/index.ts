/**
 * Pruning: the table of methods (methods.ts), when they prune (schedules.ts), and the masks that keep
 * pruned weights at zero through fine-tuning (masks.ts). Structured methods remove whole channels
 * with src/core/structured, driven by the same schedules.
 */
export * from './methods';
export * from './schedules';
export * from './masks';
export { magnitudeGlobalMasks, magnitudeLayerMasks, randomMasks } from './unstructured';
