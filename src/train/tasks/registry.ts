import { HippoError } from "../../errors.js";
import { AssociativeRecall, ASSOCIATIVE_RECALL_OPTIONS } from "./associative-recall.js";
import { InductionHead, INDUCTION_HEAD_OPTIONS } from "./induction-head.js";
import { type OptionSpecs, type TaskOptions } from "./options.js";
import { Phonebook, PHONEBOOK_OPTIONS } from "./phonebook.js";
import { SelectiveCopying, SELECTIVE_COPYING_OPTIONS } from "./selective-copying.js";
import { type SyntheticTask } from "./task.js";

/** Every synthetic task by name: its constructor and its declared options (for --help listings). */
export const TASKS = {
  "associative-recall": { create: (o: TaskOptions) => new AssociativeRecall(o), options: ASSOCIATIVE_RECALL_OPTIONS },
  "induction-head": { create: (o: TaskOptions) => new InductionHead(o), options: INDUCTION_HEAD_OPTIONS },
  "selective-copying": { create: (o: TaskOptions) => new SelectiveCopying(o), options: SELECTIVE_COPYING_OPTIONS },
  "phonebook": { create: (o: TaskOptions) => new Phonebook(o), options: PHONEBOOK_OPTIONS },
} satisfies Record<string, { create: (o: TaskOptions) => SyntheticTask; options: OptionSpecs }>;

export type TaskName = keyof typeof TASKS;
export const TASK_NAMES = Object.keys(TASKS) as TaskName[];

/** The task called `name`, with `options` (unknown names and bad options are HippoErrors that say which). */
export function getTask(name: string, options: TaskOptions = {}): SyntheticTask {
  if (!Object.hasOwn(TASKS, name)) {
    throw new HippoError(`unknown task '${name}'; valid tasks: ${TASK_NAMES.join(", ")}`);
  }
  return TASKS[name as TaskName].create(options);
}
