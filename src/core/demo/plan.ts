/**
 * What the demo is made of, without the code that makes it: the editor's host reads this file to
 * ask the engine for a demo session (it loads no TensorFlow.js and no image code).
 */

/** Column names of the demo's `data.csv`. */
export const BIASED_MNIST_COLUMNS = { image: 'image', label: 'digit', group: 'ink', split: 'split' } as const;

/** Where a demo folder keeps its parts: `data/data.csv` with `data/images/`, and `model/model.json`. */
export const DEMO_LAYOUT = { data: 'data', csv: 'data.csv', model: 'model' } as const;

/** How big the demo's data set is and how long its dense model trains. */
export interface DemoDataPlan {
  trainCount: number;
  validationCount: number;
  testCount: number;
  baselineEpochs: number;
}

/** …and the session `fairprune demo` runs on it. */
export interface DemoPlan extends DemoDataPlan {
  sparsities: number[];
  fineTuneEpochs: number;
}

/** `fairprune demo`: the numbers in the README. */
export const FULL_DEMO: DemoPlan = {
  trainCount: 6000,
  validationCount: 1000,
  testCount: 2000,
  baselineEpochs: 6,
  sparsities: [0.5, 0.8, 0.9],
  fineTuneEpochs: 3,
};
/**
 * The editor's "Try the Demo": half the digits and fewer baseline epochs, so the first points come
 * within a minute; its session takes the sparsities and epochs from the settings.
 */
export const EDITOR_DEMO: DemoDataPlan = { trainCount: 3000, validationCount: 500, testCount: 1000, baselineEpochs: 4 };
/** `fairprune demo --quick`, for tests. */
export const QUICK_DEMO: DemoPlan = {
  trainCount: 1200,
  validationCount: 200,
  testCount: 400,
  baselineEpochs: 2,
  sparsities: [0.8],
  fineTuneEpochs: 1,
};
/**
 * What the demo compares: the group-blind losses and the group-aware objective that kept the rare group best
 * in our runs.
 */
export const DEMO_LOSSES = ['ce', 'pw', 'group-balanced'] as const;
export const DEMO_SEED = 7;
export const DEMO_MINORITY_FRACTION = 0.05;
