import { Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { AppError, DigestMismatchError } from "../domain/errors.js";
import { ensureFreeSpace } from "../pull/download/disk-space.js";
import type { BlobStore } from "../store/blob-store.js";
import { reasonOf, SourceRefusal, type WeightsSource } from "./weights-source.js";

/** Attempts in a row that bring no byte before a peer is given up (a cut connection that made progress resumes). */
const MAX_ATTEMPTS = 3;
/** Pause before resuming a cut transfer. */
const RETRY_DELAY_MS = 500;

/** How a replica reaches its peers. */
export interface PeerSettings {
  /** The admin key presented to the peer (Bearer), if any. */
  key?: string;
  /** No response or byte for this long: the attempt is dropped (and resumed, with Range, from where it stopped). */
  stallTimeoutMs: number;
}

/**
 * Another replica as a source of blobs: `HEAD /api/blobs/{digest}` says whether it has the blob, `GET` streams it
 * through the blob store's verifying write (hashed while written, stored only if it is `digest`). A transfer cut
 * midway resumes where it stopped with `Range` (and `If-Range`, so a changed blob is sent whole, and the bytes
 * already received are skipped); a peer that sends bytes hashing to something else is refused and nothing is kept.
 */
export class PeerSource implements WeightsSource {
  readonly label: string;

  constructor(
    private readonly base: string,
    private readonly blobs: BlobStore,
    private readonly settings: PeerSettings,
  ) {
    this.label = `peer ${base}`;
  }

  async fetch(digest: string, progress: (bytes: number, total: number | undefined) => void, signal: AbortSignal): Promise<void> {
    const head = await this.request(digest, { method: "HEAD" }, signal);
    if (head.status !== 200) throw refusal(head.status);
    try {
      await this.blobs.write(Readable.from(this.bytes(digest, progress, signal)), digest, signal);
    } catch (error) {
      if (error instanceof DigestMismatchError) throw new SourceRefusal(`sent bytes that hash to ${error.actual}, not ${digest}: discarded`);
      throw error;
    }
  }

  /** The blob's bytes in order, over as many GETs as it takes (each resuming where the last one stopped). */
  private async *bytes(digest: string, progress: (bytes: number, total: number | undefined) => void, signal: AbortSignal): AsyncGenerator<Buffer> {
    let received = 0;
    let size: number | undefined;
    let etag: string | undefined;
    for (let attempts = 1; ; attempts++) {
      const resume = received > 0 ? { range: `bytes=${received}-`, ...(etag !== undefined && { "if-range": etag }) } : {};
      const before = received;
      try {
        const response = await this.request(digest, { method: "GET", headers: resume }, signal);
        const unusable = unusableAnswer(response, digest, received);
        if (unusable) {
          await response.body?.cancel();
          throw unusable;
        }
        // A whole answer to a resumed request (the peer ignored Range, or If-Range failed): skip what we have.
        let skip = response.status === 200 ? received : 0;
        if (size === undefined) {
          const length = Number(response.headers.get("content-length") ?? Number.NaN);
          size = Number.isSafeInteger(length) ? length : undefined;
          if (size !== undefined) await ensureFreeSpace(this.blobs.dir, size);
          progress(0, size);
        }
        etag ??= response.headers.get("etag") ?? undefined;
        for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
          let bytes = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
          if (skip > 0) {
            const dropped = Math.min(skip, bytes.length);
            skip -= dropped;
            bytes = bytes.subarray(dropped);
            if (bytes.length === 0) continue;
          }
          received += bytes.length;
          if (size !== undefined && received > size) throw new SourceRefusal(`sent more than the ${size} bytes it announced`);
          progress(received, size);
          yield bytes;
        }
        if (size === undefined || received === size) return;
        throw new Error(`the transfer ended after ${received} of ${size} bytes`);
      } catch (error) {
        // A refusal, or one of ours (the disk is full): asking again would not help.
        if (signal.aborted || error instanceof SourceRefusal || error instanceof AppError) throw error;
        if (received > before) attempts = 1; // it made progress: a fresh count
        if (attempts >= MAX_ATTEMPTS) throw new Error(`${reasonOf(error)} (${attempts} attempts)`);
        await sleep(RETRY_DELAY_MS, undefined, { signal });
      }
    }
  }

  /**
   * One request to the peer's blob route, dropped when it stalls: no answer, or (while its body is read) no byte,
   * for the stall timeout.
   */
  private async request(digest: string, init: { method: "HEAD" | "GET"; headers?: Record<string, string> }, signal: AbortSignal): Promise<Response> {
    const stallMs = this.settings.stallTimeoutMs;
    const stall = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const restart = (what: string): void => {
      clearTimeout(timer);
      timer = setTimeout(() => stall.abort(new Error(`no ${what} for ${stallMs} ms`)), stallMs).unref();
    };
    restart("answer");
    const headers = { ...init.headers, ...(this.settings.key ? { authorization: `Bearer ${this.settings.key}` } : {}) };
    let response: Response;
    try {
      response = await fetch(`${this.base}/api/blobs/${digest}`, { method: init.method, headers, signal: AbortSignal.any([signal, stall.signal]) });
    } catch (error) {
      clearTimeout(timer);
      throw stall.signal.aborted && !signal.aborted ? stall.signal.reason : error;
    }
    if (response.body === null) {
      clearTimeout(timer);
      return response;
    }
    restart("byte");
    const watched = response.body.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform: (chunk, controller) => {
          restart("byte");
          controller.enqueue(chunk);
        },
        flush: () => clearTimeout(timer),
      }),
    );
    return new Response(watched, { status: response.status, headers: response.headers });
  }
}

/** Why an answer to a GET of `digest` (from byte `received` on) cannot be used, if it cannot. */
function unusableAnswer(response: Response, digest: string, received: number): SourceRefusal | undefined {
  if (response.status !== 200 && !(response.status === 206 && received > 0)) return refusal(response.status);
  const range = response.headers.get("content-range");
  if (response.status === 206 && !range?.startsWith(`bytes ${received}-`)) return new SourceRefusal(`answered a request for bytes ${received}- with ${range ?? "no Content-Range"}`);
  const served = response.headers.get("x-content-digest");
  if (served !== null && served !== digest) return new SourceRefusal(`served ${served} when asked for ${digest}`);
  return undefined;
}

/** A peer's status that is no blob, in words. */
function refusal(status: number): SourceRefusal {
  if (status === 404) return new SourceRefusal("does not have it (404)", true);
  if (status === 401) return new SourceRefusal("refused the key (401): set AI_SERVER_PEER_KEY (or AI_SERVER_ADMIN_KEY) to an admin key it accepts");
  if (status === 403) return new SourceRefusal("refused the key (403): fetching weights needs an admin key");
  return new SourceRefusal(`answered HTTP ${status}`);
}
