import { Worker } from "node:worker_threads";

/** The hashes of a whole file: sha256 as "sha256:<hex>", the git blob id (hex) when asked for. */
export interface FileDigests {
  sha256: string;
  gitBlobSha1?: string | undefined;
}

/** Bytes the frontier must advance before the worker is told (it reads in chunks of 4 MiB anyway). */
const NOTIFY_STEP = 1 << 20;

/**
 * The worker's code (plain JavaScript, evaluated as a script so that it runs the same from the sources and from the
 * build). It reads the file in order up to the limit it is told, hashing as it goes, and posts the digests once it
 * has hashed `size` bytes. A message with a new generation starts over from byte 0.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const { createHash } = require("node:crypto");
const { openSync, readSync } = require("node:fs");
const { file, size, gitBlob } = workerData;
const fd = openSync(file, "r");
const buffer = Buffer.allocUnsafe(4 << 20);
let generation, limit = 0, position = 0, sha256, sha1, reported = false, scheduled = false;
const reset = (next) => {
  generation = next;
  limit = 0;
  position = 0;
  reported = false;
  sha256 = createHash("sha256");
  sha1 = gitBlob ? createHash("sha1").update("blob " + size + "\\0") : undefined;
};
const schedule = () => {
  if (scheduled) return;
  scheduled = true;
  setImmediate(step);
};
const step = () => {
  scheduled = false;
  if (position < limit) {
    const read = readSync(fd, buffer, 0, Math.min(buffer.length, limit - position), position);
    if (read === 0) throw new Error("the partial download ends before its written bytes");
    const chunk = buffer.subarray(0, read);
    sha256.update(chunk);
    if (sha1) sha1.update(chunk);
    position += read;
  }
  if (position === size && !reported) {
    reported = true;
    parentPort.postMessage({ generation, sha256: "sha256:" + sha256.digest("hex"), gitBlobSha1: sha1 && sha1.digest("hex") });
  } else if (position < limit) schedule();
};
parentPort.on("message", (message) => {
  if (message.generation !== generation) reset(message.generation);
  limit = Math.max(limit, message.limit);
  schedule();
});
`;

/**
 * Hashes a file in order while it is being downloaded, on a worker thread so the hashing never competes with the
 * sockets for the event loop. The downloader tells it how far the file is contiguously written (`advance`); the
 * worker reads that prefix back from disk. Most of the hashing is thus done when the last byte arrives.
 */
export class HashWorker {
  private readonly worker: Worker;
  private generation = 0;
  private told = -1;
  private outcome: { digests: FileDigests } | { error: unknown } | undefined;
  private waiter: (() => void) | undefined;

  constructor(file: string, private readonly size: number, gitBlob: boolean) {
    this.worker = new Worker(WORKER_SOURCE, { eval: true, execArgv: [], workerData: { file, size, gitBlob } });
    this.worker.on("message", (message: FileDigests & { generation: number }) => {
      if (message.generation !== this.generation) return;
      this.settle({ digests: { sha256: message.sha256, gitBlobSha1: message.gitBlobSha1 } });
    });
    this.worker.on("error", (error) => this.settle({ error }));
  }

  /** The file is written contiguously up to `limit` (exclusive). */
  advance(limit: number): void {
    if (limit < this.told + NOTIFY_STEP && limit < this.size) return;
    if (limit <= this.told) return;
    this.told = limit;
    this.worker.postMessage({ generation: this.generation, limit });
  }

  /** Bytes already hashed may change (a part or the file starts over): hash again from byte 0. */
  restart(): void {
    this.generation++;
    this.told = -1;
    this.outcome = undefined;
  }

  /** The digests once the whole file is hashed (everything must have been advanced to `size`). */
  async digests(signal: AbortSignal): Promise<FileDigests> {
    this.advance(this.size);
    while (this.outcome === undefined) {
      signal.throwIfAborted();
      await new Promise<void>((resolve) => {
        const stop = (): void => resolve();
        this.waiter = () => {
          signal.removeEventListener("abort", stop);
          resolve();
        };
        signal.addEventListener("abort", stop, { once: true });
      });
    }
    if ("error" in this.outcome) throw this.outcome.error;
    return this.outcome.digests;
  }

  async close(): Promise<void> {
    await this.worker.terminate();
  }

  private settle(outcome: NonNullable<HashWorker["outcome"]>): void {
    this.outcome = outcome;
    this.waiter?.();
    this.waiter = undefined;
  }
}
