// Prints one plain closing line, "tests: N passed, N failed, N skipped", after vitest's own
// summary, so CI logs (and tools that read them) have a count without colour codes.

import type { Reporter, RunnerTask, RunnerTestFile } from "vitest/node";

function count(tasks: RunnerTask[], acc = { passed: 0, failed: 0, skipped: 0 }) {
  for (const t of tasks) {
    if (t.type === "suite") {
      if (t.tasks.length === 0 && t.result?.state === "fail") acc.failed++;
      count(t.tasks, acc);
      continue;
    }
    const state = t.result?.state;
    if (state === "pass") acc.passed++;
    else if (state === "fail") acc.failed++;
    else acc.skipped++;
  }
  return acc;
}

/** @public vitest.config.ts loads this reporter by path. */
export default class SummaryReporter implements Reporter {
  onFinished(files: RunnerTestFile[] = [], errors: unknown[] = []): void {
    const c = count(files);
    // A file that failed outside its tests (failed to load, a beforeAll threw) must not read as a
    // pass or a skip: it counts as one failure.
    const failed =
      c.failed + files.filter((f) => f.result?.state === "fail" && count(f.tasks).failed === 0).length;
    const unhandled = errors.length > 0 ? ` (${errors.length} unhandled errors)` : "";
    process.stdout.write(`\ntests: ${c.passed} passed, ${failed} failed, ${c.skipped} skipped${unhandled}\n`);
  }
}
