import { isFinal, type Job } from "../domain/job.js";
import type { JobListener } from "./jobs.js";
import type { JobStore } from "./job-store.js";

/** How often a job another replica runs is read while someone watches it. */
const WATCH_EVERY_MS = 1000;

/**
 * Follows a job this process does not run (another replica's, or one that ended) in the database: `listener` gets
 * it as stored now, then each change read every second, until it ends. A job removed meanwhile (cancelled) ends as
 * "cancelled"; one never found calls nothing. A failed read is tried again at the next tick. Returns the function
 * that stops watching.
 */
export function watchStoredJob<Plan>(store: JobStore<Plan>, id: string, listener: JobListener): () => void {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let last: Job | undefined;
  let lastText = "";
  const poll = async (): Promise<void> => {
    try {
      const stored = await store.get(id);
      if (stopped) return;
      if (stored === undefined) {
        if (last !== undefined) listener({ ...last, state: "cancelled", status: "cancelled", bytesPerSecond: 0, etaSeconds: null });
        return;
      }
      const text = JSON.stringify(stored.job);
      if (text !== lastText) {
        lastText = text;
        last = stored.job;
        listener(stored.job);
      }
      if (isFinal(stored.job.state)) return;
    } catch {
      // the database may answer at the next tick
    }
    if (!stopped) timer = setTimeout(() => void poll(), WATCH_EVERY_MS);
  };
  void poll();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
