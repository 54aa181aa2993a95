import { isFinal } from "../domain/job.js";
import type { JobClaim, JobStore } from "./job-store.js";
import type { LiveJob } from "./job-types.js";

/**
 * Writes a running job as it is now, one write at a time per job (what changes meanwhile is written by the next
 * one), renewing its claim. A write that finds the row gone (cancelled on another replica) or claimed by another
 * replica stops the job here without writing to it again. A failed write is logged; the next change writes again.
 */
export function persistJob<Plan>(live: LiveJob<Plan>, store: JobStore<Plan>, claim: JobClaim, log: (message: string) => void): Promise<void> {
  if (!live.owned) return Promise.resolve();
  live.dirty = true;
  // Owned and dirty: the loop below awaits at least once, so `saving` is set before its end clears it.
  live.saving ??= (async () => {
    try {
      while (live.dirty && live.owned) {
        live.dirty = false;
        if (!(await store.save(live.job, live.plan, claim))) release(live);
      }
    } catch (error) {
      log(`job ${live.job.id}: saving its progress failed: ${error instanceof Error ? error.message : String(error)}`);
    } finally {
      live.saving = undefined;
    }
  })();
  return live.saving;
}

/** The job's row is no longer this process's: stop the job (unless it ended or is stopping anyway). */
function release<Plan>(live: LiveJob<Plan>): void {
  live.owned = false;
  if (isFinal(live.job.state) || live.stop !== undefined) return;
  live.stop = "released";
  live.abort.abort(new Error("cancelled or taken over by another replica"));
}
