import { toAppError } from "../domain/errors.js";
import type { ModelRecord } from "../domain/model.js";
import type { Scheduler } from "./scheduler.js";

export type PreloadState = "pending" | "loading" | "loaded" | "failed";

export interface PreloadEntry {
  model: string;
  state: PreloadState;
  error?: string;
}

/**
 * Loads the configured models at start-up, one after the other, and reports progress for the readiness check.
 * Preloaded models never expire (keep-alive -1) but, being idle, may still be evicted to make room for another.
 */
export class Preloader {
  private readonly entries: PreloadEntry[];
  private readonly abort = new AbortController();
  private running?: Promise<void>;

  constructor(
    private readonly scheduler: Scheduler,
    private readonly resolve: (name: string) => ModelRecord,
    models: readonly string[],
  ) {
    this.entries = models.map((model) => ({ model, state: "pending" }));
  }

  /** Starts loading (once); resolves when every model is loaded or failed. */
  start(): Promise<void> {
    this.running ??= (async () => {
      for (const entry of this.entries) {
        if (this.abort.signal.aborted) return;
        entry.state = "loading";
        try {
          const lease = await this.scheduler.acquire(this.resolve(entry.model), { pin: true, timeoutMs: 0 }, this.abort.signal);
          lease.release();
          entry.state = "loaded";
        } catch (error) {
          entry.state = "failed";
          entry.error = toAppError(error).message;
        }
      }
    })();
    return this.running;
  }

  /** True once every configured model is loaded or has failed. */
  get done(): boolean {
    return this.entries.every((e) => e.state === "loaded" || e.state === "failed");
  }

  progress(): PreloadEntry[] {
    return this.entries.map((e) => ({ ...e }));
  }

  async close(): Promise<void> {
    this.abort.abort();
    await this.running;
  }
}
