import { mkdir, rm, stat } from "node:fs/promises";
import { Agent } from "undici";
import { DownloadVerificationError } from "../../domain/errors.js";
import { ensureFreeSpace } from "./disk-space.js";
import { HashWorker, type FileDigests } from "./hash-worker.js";
import { PartialFile, removeDownloadFiles, writtenBytes } from "./partial-file.js";
import { checkRequest, downloadFiles, hashMismatch, type CheckedRequest, type DownloadFiles } from "./request.js";
import { SharedDownload, type DownloadEvents, type DownloadResult } from "./shared-download.js";
import { Transfer, type TransferSettings } from "./transfer.js";

/** One file to fetch: where, with which headers, and what its bytes must be. */
export interface DownloadRequest {
  /** Where to GET the bytes. */
  url: string;
  /** Headers for requests to the url's own origin (e.g. Authorization). Never sent to another origin a redirect leads to. */
  headers?: Record<string, string>;
  /** The exact size in bytes. */
  size: number;
  /** Expected sha256, "sha256:<64 hex>". At least one of sha256 / gitBlobSha1 is given. */
  sha256?: string;
  /** For small non-LFS git files on the Hub: the git blob id (sha1 of "blob <size>\0" + bytes), hex. */
  gitBlobSha1?: string;
}

/** Bytes of the file on disk so far (resumed bytes included) and its size. */
export interface DownloadProgress {
  completed: number;
  total: number;
}

/** A caller's view of a download: its own signal and callbacks. */
export interface DownloadOptions {
  signal?: AbortSignal;
  /** Called at most every ~100 ms while bytes arrive, and once at the end. `completed` includes bytes resumed from disk. */
  onProgress?(progress: DownloadProgress): void;
  /** Human-readable notices: a part retried and why, waiting N s for a rate limit, the server ignored Range so the download restarts on one connection, the hash is being verified. */
  onNotice?(message: string): void;
}

/** How downloads behave (from AI_SERVER_PULL_* settings; tests shrink the delays). */
export interface DownloaderSettings {
  /** Parallel connections per file (AI_SERVER_PULL_CONNECTIONS). */
  connections: number;
  /** Bytes per ranged part (AI_SERVER_PULL_PART_SIZE). */
  partSize: number;
  /** A connection with no byte for this long is dropped and its part retried (AI_SERVER_PULL_STALL_TIMEOUT). */
  stallTimeoutMs: number;
  /** Attempts per part that make no progress before the download fails (default 6). A part that made progress starts counting again. */
  maxAttempts?: number;
  /** First retry delay; each further failure doubles it, up to 30 s (default 1000 ms). */
  retryBaseMs?: number;
}

/**
 * Fetches large files over HTTP in parallel ranged parts into `dir`, resumes them after any interruption (the
 * process killed included: progress is saved every second), and verifies their hashes before handing them out.
 * It knows nothing of the Hub or the registry: a URL, headers, a size and hashes.
 *
 * Files in `dir`, named by the expected hash: `<key>.partial` (the data, sparse, full size), `<key>.parts.json`
 * (the part layout and each part's written bytes) and, once verified, `<key>.verified`.
 */
export class Downloader {
  private readonly agent: Agent;
  private readonly settings: TransferSettings & { partSize: number };
  private readonly active = new Map<string, SharedDownload>();

  /** `dir`: where partial downloads live ($AI_SERVER_HOME/models/downloads), created if missing. */
  constructor(
    readonly dir: string,
    settings: DownloaderSettings,
  ) {
    this.settings = {
      connections: Math.max(1, settings.connections),
      partSize: Math.max(1, settings.partSize),
      stallTimeoutMs: settings.stallTimeoutMs,
      maxAttempts: settings.maxAttempts ?? 6,
      retryBaseMs: settings.retryBaseMs ?? 1000,
    };
    const stall = settings.stallTimeoutMs;
    this.agent = new Agent({ headersTimeout: stall, bodyTimeout: stall, connect: { timeout: stall } });
  }

  /**
   * Downloads (or resumes) the file and verifies it; resolves to the path of the verified file inside `dir` and its
   * sha256 ("sha256:<hex>", computed even when only gitBlobSha1 was expected). The caller then moves it into the
   * blob store (BlobStore.adopt). Concurrent calls for the same file share one download (each gets the result and
   * its own progress callbacks). Rejects with the signal's reason when aborted (partial data kept for resume).
   */
  download(request: DownloadRequest, options: DownloadOptions = {}): Promise<{ path: string; digest: string }> {
    let checked: CheckedRequest;
    try {
      checked = checkRequest(request);
      options.signal?.throwIfAborted();
    } catch (error) {
      return Promise.reject(error);
    }
    const current = this.active.get(checked.key);
    if (current && !current.stopping) return current.join(options);
    const previous = current?.settled;
    const shared = new SharedDownload(checked.size, async (events, signal) => {
      await previous;
      return this.fetch(checked, events, signal);
    });
    this.active.set(checked.key, shared);
    void shared.settled.then(() => {
      if (this.active.get(checked.key) === shared) this.active.delete(checked.key);
    });
    return shared.join(options);
  }

  /** Bytes of this file already on disk from an earlier, interrupted download (0 when none). */
  async partialBytes(request: DownloadRequest): Promise<number> {
    const checked = checkRequest(request);
    const active = this.active.get(checked.key);
    if (active && !active.stopping) return active.progress();
    await active?.settled;
    const files = downloadFiles(this.dir, checked);
    if ((await sizeOf(files.verified)) === checked.size) return checked.size;
    return writtenBytes(await PartialFile.readSaved(files, checked));
  }

  /**
   * Removes the partial data of this file (a cancelled pull). Call after aborting the download's signal; waits for it
   * to stop. While another caller still waits for the same file, its data is left to that caller.
   */
  async discard(request: DownloadRequest): Promise<void> {
    const checked = checkRequest(request);
    const active = this.active.get(checked.key);
    if (active?.inUse) return;
    await active?.settled;
    await removeDownloadFiles(downloadFiles(this.dir, checked));
  }

  /** Stops every download (their progress saved; their callers' promises reject) and closes the connections. */
  async close(): Promise<void> {
    const stopping = [...this.active.values()].map((shared) => {
      shared.stop(new Error("the downloader was closed"));
      return shared.settled;
    });
    await Promise.all(stopping);
    await this.agent.close();
  }

  /** The work behind a download: reuse a verified file, else transfer, verify, and once more from scratch on a mismatch. */
  private async fetch(request: CheckedRequest, events: DownloadEvents, signal: AbortSignal): Promise<DownloadResult> {
    await mkdir(this.dir, { recursive: true });
    const files = downloadFiles(this.dir, request);
    const ready = await this.verifiedEarlier(request, files, signal);
    if (ready) return ready;
    for (let round = 1; ; round++) {
      const saved = await PartialFile.readSaved(files, request);
      await ensureFreeSpace(this.dir, request.size - writtenBytes(saved));
      const file = await PartialFile.open(files, request, saved, this.settings.partSize);
      events.trackProgress(() => file.written());
      let digests: FileDigests;
      try {
        digests = await new Transfer(file, request, this.agent, this.settings, (message) => events.notice(message), signal).run();
      } catch (error) {
        await file.close();
        throw signal.aborted ? signal.reason : error;
      }
      const problem = hashMismatch(request, digests);
      if (problem === undefined) return { path: await file.finish(), digest: digests.sha256 };
      await file.close();
      await removeDownloadFiles(files);
      if (round >= 2) throw new DownloadVerificationError(`${request.url}: ${problem}, again after downloading it a second time; nothing was kept`);
      events.notice(`${problem}: discarding the download and fetching it again from scratch`);
    }
  }

  /**
   * A file verified by an earlier download that was never adopted (a crash or a cancel in between). Named by its
   * sha256, it was verified before the rename; named by its git blob id only, it is hashed again for its sha256.
   */
  private async verifiedEarlier(request: CheckedRequest, files: DownloadFiles, signal: AbortSignal): Promise<DownloadResult | undefined> {
    const size = await sizeOf(files.verified);
    if (size === undefined) return undefined;
    const digests =
      size !== request.size ? undefined
      : request.sha256 !== undefined ? { sha256: request.sha256, gitBlobSha1: request.gitBlobSha1 }
      : await hashFile(files.verified, request, signal);
    if (digests === undefined || hashMismatch(request, digests) !== undefined) {
      await rm(files.verified, { force: true });
      return undefined;
    }
    await rm(files.data, { force: true });
    await rm(files.state, { force: true });
    return { path: files.verified, digest: digests.sha256 };
  }
}

async function hashFile(file: string, request: CheckedRequest, signal: AbortSignal): Promise<FileDigests> {
  const hasher = new HashWorker(file, request.size, request.gitBlobSha1 !== undefined);
  try {
    return await hasher.digests(signal);
  } finally {
    await hasher.close();
  }
}

async function sizeOf(file: string): Promise<number | undefined> {
  try {
    return (await stat(file)).size;
  } catch {
    return undefined;
  }
}
