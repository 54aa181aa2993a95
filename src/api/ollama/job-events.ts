import { AppError } from "../../domain/errors.js";
import { isFinal, type Job } from "../../domain/job.js";
import { EventStream } from "../../engine/event-stream.js";
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
export function jobUpdates(subscribe: (listener: JobListener) => () => void, signal?: AbortSignal): AsyncIterable<JobUpdate> {
  let unsubscribe = (): void => undefined;
  const stop = (): void => {
    unsubscribe();
    signal?.removeEventListener("abort", end);
  };
  const updates = new EventStream<JobUpdate>(stop);
  const end = (): void => {
    stop();
    // Stopped by the server (shutting down), not by the client: the watcher is told why.
    if (signal?.reason instanceof AppError) updates.fail(signal.reason);
    else updates.end();
  };
  signal?.addEventListener("abort", end, { once: true });
  unsubscribe = subscribe((job, failure) => {
    updates.push({ job, ...(failure && { failure }) });
    if (isFinal(job.state)) end();
  });
  if (signal?.aborted) end();
  return updates;
}
