import { setTimeout as sleep } from "node:timers/promises";
import type { Dispatcher } from "undici";
import { UpstreamError } from "../../domain/errors.js";
import { hostOf } from "../upstream-http.js";
import { fetchPart, type PartFetchContext } from "./fetch-part.js";
import { HashWorker, type FileDigests } from "./hash-worker.js";
import type { PartialFile, Part } from "./partial-file.js";
import type { CheckedRequest } from "./request.js";
import { RangeIgnoredError, RangeNotSatisfiableError, RateLimitedError, RetryableError } from "./transfer-errors.js";

/** How a transfer behaves; see DownloaderSettings. */
export interface TransferSettings {
  connections: number;
  stallTimeoutMs: number;
  maxAttempts: number;
  retryBaseMs: number;
}

const SAVE_INTERVAL_MS = 1000;
const LONGEST_BACKOFF_MS = 30_000;

/**
 * One pass over a partial file: `connections` workers take the lowest unfinished part each, fetch its remaining
 * bytes (retrying a part on its own, with backoff), while a hash worker reads the completed prefix back. Progress is
 * saved every second and whenever a part completes. A server that ignores Range restarts the file on one connection.
 * Resolves to the file's digests; the caller compares them with what it expects.
 */
export class Transfer {
  private readonly claimed = new Set<Part>();
  private readonly hasher: HashWorker;
  /** Index of the first part not complete, for the contiguous written prefix. */
  private frontierPart = 0;
  /** The current round of workers; aborting it stops them all (a failure, a restart, a failed save). */
  private round: AbortController | undefined;

  constructor(
    private readonly file: PartialFile,
    private readonly request: CheckedRequest,
    private readonly dispatcher: Dispatcher,
    private readonly settings: TransferSettings,
    private readonly notice: (message: string) => void,
    private readonly signal: AbortSignal,
  ) {
    this.hasher = new HashWorker(file.files.data, request.size, request.gitBlobSha1 !== undefined);
  }

  async run(): Promise<FileDigests> {
    const saver = setInterval(() => this.file.checkpoint().catch((error: unknown) => this.round?.abort(error)), SAVE_INTERVAL_MS);
    try {
      this.hasher.advance(this.frontier());
      await this.fetchAllParts();
      await this.file.checkpoint();
      this.notice("verifying sha256 digest");
      return await this.hasher.digests(this.signal);
    } finally {
      clearInterval(saver);
      await this.hasher.close();
    }
  }

  /** Fetches every part; a 200 to a ranged request starts the whole file over on one connection. */
  private async fetchAllParts(): Promise<void> {
    for (let restarts = 0; ; restarts++) {
      try {
        await this.runWorkers(this.file.parts.length === 1 ? 1 : this.settings.connections);
        return;
      } catch (error) {
        if (!(error instanceof RangeIgnoredError)) throw error;
        if (restarts >= this.settings.maxAttempts) {
          throw new UpstreamError(`${hostOf(this.request.url)} ignores Range requests and the download broke off ${restarts} times`);
        }
        this.notice(`${hostOf(this.request.url)} ignores Range requests: downloading the whole file again from the start on one connection`);
        this.file.restartAsOnePart();
        this.rewind();
      }
    }
  }

  private async runWorkers(count: number): Promise<void> {
    const round = new AbortController();
    const stop = (): void => round.abort(this.signal.reason);
    this.signal.addEventListener("abort", stop, { once: true });
    this.round = round;
    let failure: { error: unknown } | undefined;
    const worker = async (): Promise<void> => {
      try {
        for (let part = this.claimNext(); part !== undefined; part = this.claimNext()) await this.fetchWithRetries(part, round.signal);
      } catch (error) {
        failure ??= { error };
        round.abort(error);
      }
    };
    try {
      this.signal.throwIfAborted();
      await Promise.all(Array.from({ length: Math.max(1, count) }, worker));
    } finally {
      this.signal.removeEventListener("abort", stop);
      this.claimed.clear();
      this.round = undefined;
    }
    if (failure) throw failure.error;
  }

  private claimNext(): Part | undefined {
    const part = this.file.parts.find((candidate) => !this.claimed.has(candidate) && candidate.written < candidate.end - candidate.start);
    if (part) this.claimed.add(part);
    return part;
  }

  /**
   * Fetches a part until it is complete. Failures back off 1 s, 2 s, 4 s… (capped at 30 s); `maxAttempts` attempts
   * in a row that add no byte fail the download (an attempt that added bytes starts the count again). A rate limit
   * waits as long as the server asks and is no failure.
   */
  private async fetchWithRetries(part: Part, signal: AbortSignal): Promise<void> {
    const context: PartFetchContext = {
      dispatcher: this.dispatcher,
      request: this.request,
      handle: this.file.handle,
      stallTimeoutMs: this.settings.stallTimeoutMs,
      signal,
      onWritten: () => this.hasher.advance(this.frontier()),
    };
    const range = `bytes ${part.start}-${part.end - 1}`;
    let failures = 0;
    while (part.written < part.end - part.start) {
      const before = part.written;
      try {
        await fetchPart(context, part);
      } catch (error) {
        if (signal.aborted) throw signal.reason;
        if (error instanceof RateLimitedError) {
          this.notice(`${error.message}: waiting ${Math.ceil(error.waitMs / 1000)} s`);
          await sleep(error.waitMs, undefined, { signal });
          continue;
        }
        if (!(error instanceof RetryableError)) throw error;
        failures = part.written > before ? 0 : failures + 1;
        if (failures >= this.settings.maxAttempts) throw new UpstreamError(`${range} of ${hostOf(this.request.url)} failed ${failures} times; the last time: ${error.message}`);
        if (error instanceof RangeNotSatisfiableError && part.written > 0) {
          part.written = 0;
          this.rewind();
        }
        const waitMs = Math.min(this.settings.retryBaseMs * 2 ** Math.max(0, failures - 1), LONGEST_BACKOFF_MS);
        this.notice(`${range}: ${error.message}; retrying in ${formatSeconds(waitMs)} (attempt ${failures + 1} of ${this.settings.maxAttempts})`);
        await sleep(waitMs, undefined, { signal });
      }
    }
    await this.file.checkpoint();
  }

  /** End of the contiguous written prefix of the file. */
  private frontier(): number {
    const parts = this.file.parts;
    let index = this.frontierPart;
    while (index < parts.length && parts[index]!.written === parts[index]!.end - parts[index]!.start) index++;
    this.frontierPart = index;
    const part = parts[index];
    return part === undefined ? this.request.size : part.start + part.written;
  }

  /** Bytes before the frontier were taken back: hash again from the start. */
  private rewind(): void {
    this.frontierPart = 0;
    this.hasher.restart();
    this.hasher.advance(this.frontier());
  }
}

function formatSeconds(ms: number): string {
  return ms >= 1000 ? `${Math.round(ms / 100) / 10} s` : `${ms} ms`;
}
