export { AssociativeRecall, ASSOCIATIVE_RECALL_OPTIONS } from "./associative-recall.js";
export { InductionHead, INDUCTION_HEAD_OPTIONS } from "./induction-head.js";
export { SelectiveCopying, SELECTIVE_COPYING_OPTIONS } from "./selective-copying.js";
export { Phonebook, PHONEBOOK_OPTIONS } from "./phonebook.js";
export { getTask, TASKS, TASK_NAMES, type TaskName } from "./registry.js";
export { COMMON_OPTIONS, type OptionSpec, type OptionSpecs, type TaskOptions } from "./options.js";
export {
  exactMatch, tokenAccuracy, randInt, IGNORE_INDEX, SyntheticTask, RowSet, type Example, type TaskBatch,
} from "./task.js";
