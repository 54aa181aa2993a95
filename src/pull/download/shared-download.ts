import type { DownloadOptions } from "./downloader.js";

const PROGRESS_INTERVAL_MS = 100;

/** The file a download produced. */
export interface DownloadResult {
  path: string;
  digest: string;
}

/** What the work of a download reports through. */
export interface DownloadEvents {
  notice(message: string): void;
  /** Where the bytes completed so far can be read (bytes resumed from disk included). */
  trackProgress(completed: () => number): void;
}

/**
 * One download that several callers may wait on. Each caller has its own progress and notice callbacks and its own
 * signal: a caller that aborts stops waiting at once, and the work itself is aborted only when no caller is left
 * (the last caller's promise then settles after the work has stopped, its progress saved).
 */
export class SharedDownload implements DownloadEvents {
  private readonly callers = new Set<DownloadOptions>();
  private readonly controller = new AbortController();
  private readonly result: Promise<DownloadResult>;
  private completed: () => number = () => 0;
  private reported = -1;
  /** Settles (never rejects) once the work has stopped. */
  readonly settled: Promise<void>;

  constructor(private readonly total: number, work: (events: DownloadEvents, signal: AbortSignal) => Promise<DownloadResult>) {
    const ticker = setInterval(() => this.report(this.completed()), PROGRESS_INTERVAL_MS).unref();
    this.result = work(this, this.controller.signal);
    this.settled = this.result.then(
      () => this.report(this.total, true),
      () => undefined,
    );
    void this.settled.finally(() => clearInterval(ticker));
  }

  /** The work was aborted (every caller left); it may still be stopping. */
  get stopping(): boolean {
    return this.controller.signal.aborted;
  }

  /** Some caller still waits for the result. */
  get inUse(): boolean {
    return this.callers.size > 0;
  }

  /** Bytes completed so far. */
  progress(): number {
    return this.completed();
  }

  /** Aborts the work whoever waits for it (the downloader closes). */
  stop(reason: unknown): void {
    this.controller.abort(reason);
  }

  /** Waits for the result as one more caller. */
  join(options: DownloadOptions): Promise<DownloadResult> {
    const { signal } = options;
    if (signal?.aborted) return Promise.reject(signal.reason);
    this.callers.add(options);
    this.reported = -1; // the next tick tells the newcomer where the download stands
    return new Promise((resolve, reject) => {
      const leave = (): void => {
        this.callers.delete(options);
        signal?.removeEventListener("abort", onAbort);
      };
      const onAbort = (): void => {
        leave();
        const reason: unknown = signal?.reason;
        if (this.callers.size > 0) return reject(reason);
        this.controller.abort(reason);
        void this.settled.then(() => reject(reason));
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.result.finally(leave).then(resolve, reject);
    });
  }

  notice(message: string): void {
    for (const caller of this.callers) guarded(() => caller.onNotice?.(message));
  }

  trackProgress(completed: () => number): void {
    this.completed = completed;
  }

  private report(completed: number, final = false): void {
    if (completed === this.reported && !final) return;
    this.reported = completed;
    for (const caller of this.callers) guarded(() => caller.onProgress?.({ completed, total: this.total }));
  }
}

/** A caller's callback that throws must not break the download the other callers share. */
function guarded(callback: () => void): void {
  try {
    callback();
  } catch {
    // Ignored: the callback is the caller's business.
  }
}
