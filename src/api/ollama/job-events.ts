import type { AppError } from "../../domain/errors.js";
import { isFinal, type Job } from "../../domain/job.js";
import type { JobListener } from "../../jobs/jobs.js";

/** What a watcher of a job gets: every snapshot, in order, the last one final. */
export interface JobUpdate {
  job: Job;
  failure?: AppError;
}

/**
 * A job's changes as an async iterable (for the stream writers), from `subscribe`. Ends after the final state, or
 * when `signal` aborts (the client went away): listening stops; the job itself goes on.
 */
export async function* jobUpdates(subscribe: (listener: JobListener) => () => void, signal?: AbortSignal): AsyncGenerator<JobUpdate> {
  const queue: JobUpdate[] = [];
  let wake: (() => void) | undefined;
  const unsubscribe = subscribe((job, failure) => {
    queue.push({ job, ...(failure && { failure }) });
    wake?.();
  });
  const onAbort = (): void => wake?.();
  signal?.addEventListener("abort", onAbort);
  try {
    for (;;) {
      if (signal?.aborted) return;
      const next = queue.shift();
      if (next === undefined) {
        await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
        continue;
      }
      yield next;
      if (isFinal(next.job.state)) return;
    }
  } finally {
    signal?.removeEventListener("abort", onAbort);
    unsubscribe();
  }
}
