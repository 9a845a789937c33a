/** The data contract (docs/data-contract.md): CSV and images → model inputs, labels, subgroups, splits. */
export { loadDataset, loadDatasetForTraining, SMALL_GROUP_TEST_SAMPLES, DEFAULT_PIXEL_SCALE } from './dataset';
export type { LoadSpec, ModelInput, Dataset } from './dataset';
export { readCsvHeader, parseCsv, readCsvFile, isMissing, parseNumber, IMAGE_FILE } from './csv';
export type { CsvHeader, ColumnSummary, CsvTable } from './csv';
export {
  PREPROCESSING_FILE,
  readPreprocessingBeside,
  preprocessingPathFor,
  validatePreprocessing,
  preprocessingJson,
  outputFeatureNames,
} from './preprocessing';
export type {
  Preprocessing,
  ColumnTransform,
  StandardizeTransform,
  OneHotTransform,
  ImagePreprocessing,
} from './preprocessing';
export {
  DEFAULT_SPLIT_FRACTIONS,
  SPLIT_CODE,
  SPLIT_NAMES,
  parseSplitValue,
  stratifiedSplit,
  apportion,
} from './splits';
export type { SplitFractions } from './splits';
