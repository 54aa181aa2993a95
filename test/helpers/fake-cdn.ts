/**
 * A loopback stand-in for the storage host that the Hugging Face Hub and Ollama's registry redirect large files to
 * (S3 / CloudFront / R2 presigned URLs): its own origin, blobs addressed by sha256 behind signed, expiring URLs,
 * byte ranges, streamed from disk (multi-GB files work), and switchable faults as real networks produce them:
 * ignored Range, cut connections, a flipped byte, stalls, 429 and 500 answers, a per-connection rate limit.
 * It logs every request, and rejects any that carries an `Authorization` header, as S3 does with presigned URLs:
 * a client must never send its Hub token to another host.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import type http from "node:http";
import type { Socket } from "node:net";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { listenLoopback, recordRequest, resolveRange, send, type LoopbackServer, type RecordedRequest } from "./fake-http.js";

/**
 * Faults the CDN injects, for one blob or for all (see FakeCdn.setFaults). `times` counts the answers a fault
 * applies to: default 1 (once), `Infinity` for always. Body-byte counts are per answer; `corrupt.offset` is a
 * position in the blob.
 */
export interface CdnFaults {
  /** Ignore Range: always 200 with the whole body, and no `Accept-Ranges`. */
  noRange?: boolean;
  /** Close the connection after this many body bytes, in answers longer than that. */
  cut?: { afterBytes: number; times?: number };
  /** Flip (xor 0xff) the blob's byte at `offset` in answers that carry it. */
  corrupt?: { offset: number; times?: number };
  /** Send nothing for `ms` after this many body bytes, then go on, in answers longer than that. */
  stall?: { afterBytes: number; ms: number; times?: number };
  /** Answer 429 with `Retry-After: retryAfterSeconds` to the first `times` requests. */
  tooManyRequests?: { times: number; retryAfterSeconds: number };
  /** Answer 500 to the first `times` requests. */
  serverError?: { times: number };
  /** Send at most this many body bytes per second on each connection (CDNs cap a connection, not a client). */
  bytesPerSecond?: number;
}

/** A blob the CDN serves: from a file on disk (streamed) or from memory. */
export interface CdnBlob {
  sha256: string;
  size: number;
  file?: string;
  content?: Buffer;
}

export interface FakeCdnOptions {
  /** Answer 400 to requests with an `Authorization` header, as S3 does for presigned URLs. Default true. */
  rejectAuthorization?: boolean;
  /** Lifetime of signed URLs, in seconds. Default 3600. */
  urlLifetimeSeconds?: number;
}

/** The loopback CDN. Start it with `FakeCdn.start()`. */
export class FakeCdn {
  /** Every request, in arrival order. */
  readonly requests: RecordedRequest[] = [];
  rejectAuthorization: boolean;
  urlLifetimeSeconds: number;
  private readonly blobs = new Map<string, CdnBlob>();
  private readonly served = new Map<string, number>();
  private readonly faults = new Map<string, FaultState>();
  private globalFaults: FaultState | undefined;
  private signingKey = randomBytes(16);
  private readonly retiredKeys: Buffer[] = [];
  private readonly pacing = new WeakMap<Socket, { nextAt: number }>();

  private constructor(private readonly server: LoopbackServer, options: FakeCdnOptions) {
    this.rejectAuthorization = options.rejectAuthorization ?? true;
    this.urlLifetimeSeconds = options.urlLifetimeSeconds ?? 3600;
  }

  static async start(options: FakeCdnOptions = {}): Promise<FakeCdn> {
    let cdn: FakeCdn | undefined;
    const server = await listenLoopback((req, res) => cdn!.handle(req, res));
    cdn = new FakeCdn(server, options);
    return cdn;
  }

  /** The CDN's origin, e.g. `http://127.0.0.1:40123`. */
  get url(): string {
    return this.server.url;
  }

  /** Serves a file (hashed unless `known` gives its sha256 and size, e.g. for a multi-GB file hashed once). */
  async addFile(file: string, known?: { sha256: string; size: number }): Promise<CdnBlob> {
    const { sha256, size } = known ?? (await fileDigest(file));
    const blob: CdnBlob = { sha256, size, file };
    this.blobs.set(sha256, blob);
    return blob;
  }

  /** Serves bytes from memory. */
  addContent(content: Buffer | string): CdnBlob {
    const bytes = typeof content === "string" ? Buffer.from(content) : content;
    const blob: CdnBlob = { sha256: createHash("sha256").update(bytes).digest("hex"), size: bytes.length, content: bytes };
    this.blobs.set(blob.sha256, blob);
    return blob;
  }

  blob(sha256: string): CdnBlob | undefined {
    return this.blobs.get(sha256);
  }

  /** A fresh signed URL for a blob: `{url}/blobs/{sha256}?expires={unix seconds}&sig={hex}`. */
  signedUrl(sha256: string): string {
    const expires = Math.floor(Date.now() / 1000) + this.urlLifetimeSeconds;
    return `${this.url}/blobs/${sha256}?expires=${expires}&sig=${sign(this.signingKey, sha256, expires)}`;
  }

  /** Makes every URL signed so far answer 403 "Request has expired" (a client must resolve the file again). */
  expireIssuedUrls(): void {
    this.retiredKeys.push(this.signingKey);
    this.signingKey = randomBytes(16);
  }

  /** Sets the faults of one blob (or, without `sha256`, of every blob that has none of its own); counts restart. */
  setFaults(faults: CdnFaults, sha256?: string): void {
    if (sha256 === undefined) this.globalFaults = new FaultState(faults);
    else this.faults.set(sha256, new FaultState(faults));
  }

  clearFaults(): void {
    this.faults.clear();
    this.globalFaults = undefined;
  }

  /** Body bytes sent for one blob, or for all. */
  bytesServed(sha256?: string): number {
    if (sha256 !== undefined) return this.served.get(sha256) ?? 0;
    let total = 0;
    for (const bytes of this.served.values()) total += bytes;
    return total;
  }

  /** The requests for one blob. */
  requestsFor(sha256: string): RecordedRequest[] {
    return this.requests.filter((r) => r.path === `/blobs/${sha256}`);
  }

  close(): Promise<void> {
    return this.server.close();
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const record = recordRequest(this.requests, req, res);
    const sha256 = /^\/blobs\/([0-9a-f]{64})$/.exec(record.path)?.[1];
    const blob = sha256 === undefined ? undefined : this.blobs.get(sha256);
    if (req.method !== "GET" && req.method !== "HEAD") return s3Error(res, 405, "MethodNotAllowed", "The specified method is not allowed against this resource.");
    if (!blob) return s3Error(res, 404, "NoSuchKey", "The specified key does not exist.");
    if (this.rejectAuthorization && req.headers.authorization !== undefined) {
      return s3Error(res, 400, "InvalidArgument", "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified");
    }
    const signature = this.checkSignature(blob.sha256, record.query);
    if (signature !== "valid") return s3Error(res, 403, "AccessDenied", signature === "expired" ? "Request has expired" : "Invalid signature");

    const faults = this.faults.get(blob.sha256) ?? this.globalFaults ?? new FaultState({});
    if (faults.take("tooManyRequests")) {
      return s3Error(res, 429, "SlowDown", "Please reduce your request rate.", { "retry-after": String(faults.faults.tooManyRequests?.retryAfterSeconds ?? 1) });
    }
    if (faults.take("serverError")) return s3Error(res, 500, "InternalError", "We encountered an internal error. Please try again.");

    const range = faults.faults.noRange ? ({ kind: "whole" } as const) : resolveRange(req.headers.range, blob.size);
    const headers: http.OutgoingHttpHeaders = {
      "content-type": "application/octet-stream",
      etag: `"${blob.sha256}"`,
      "last-modified": "Mon, 01 Jan 2024 00:00:00 GMT",
      ...(!faults.faults.noRange && { "accept-ranges": "bytes" }),
    };
    if (range.kind === "unsatisfiable") return send(res, 416, "", { ...headers, "content-range": `bytes */${blob.size}` });
    const start = range.kind === "part" ? range.start : 0;
    const end = range.kind === "part" ? range.end : blob.size - 1;
    res.writeHead(range.kind === "part" ? 206 : 200, {
      ...headers,
      "content-length": end - start + 1,
      ...(range.kind === "part" && { "content-range": `bytes ${start}-${end}/${blob.size}` }),
    });
    if (req.method === "HEAD" || blob.size === 0) {
      res.end();
      return;
    }
    await this.pump(res, blob, start, end, faults, record);
  }

  private checkSignature(sha256: string, query: URLSearchParams): "valid" | "expired" | "invalid" {
    const expires = Number(query.get("expires"));
    const sig = query.get("sig") ?? "";
    if (!Number.isInteger(expires)) return "invalid";
    if (sameSignature(sig, sign(this.signingKey, sha256, expires))) return expires * 1000 < Date.now() ? "expired" : "valid";
    return this.retiredKeys.some((key) => sameSignature(sig, sign(key, sha256, expires))) ? "expired" : "invalid";
  }

  /** Streams bytes [start, end] of the blob, applying the faults this answer draws. */
  private async pump(res: http.ServerResponse, blob: CdnBlob, start: number, end: number, faults: FaultState, record: RecordedRequest): Promise<void> {
    const length = end - start + 1;
    const { cut, corrupt, stall, bytesPerSecond } = faults.faults;
    const cutAt = cut && length > cut.afterBytes && faults.take("cut") ? cut.afterBytes : Infinity;
    const corruptAt = corrupt && corrupt.offset >= start && corrupt.offset <= end && faults.take("corrupt") ? corrupt.offset - start : -1;
    let stallAt = stall && length > stall.afterBytes && faults.take("stall") ? stall.afterBytes : Infinity;
    if (cutAt === Infinity && corruptAt < 0 && stallAt === Infinity && bytesPerSecond === undefined && blob.file !== undefined) {
      // The fast path (throughput benchmarks): the file straight to the socket.
      const source = createReadStream(blob.file, { start, end, highWaterMark: 1 << 20 });
      source.on("data", (chunk) => this.count(blob.sha256, record, chunk.length));
      await pipeline(source, res).catch(() => undefined); // a client that goes away is not an error
      return;
    }
    const source = blob.file !== undefined ? createReadStream(blob.file, { start, end, highWaterMark: 1 << 20 }) : Readable.from(slices(blob.content!.subarray(start, end + 1)));
    let sent = 0;
    try {
      for await (const data of source as AsyncIterable<Buffer>) {
        let chunk = data;
        while (chunk.length > 0) {
          if (res.destroyed) return;
          if (sent >= cutAt) return cutConnection(res);
          if (sent >= stallAt) {
            stallAt = Infinity;
            await sleepUnlessClosed(res, stall!.ms);
            continue;
          }
          const limit = Math.min(chunk.length, cutAt - sent, stallAt - sent, bytesPerSecond ? pieceSize(bytesPerSecond) : Infinity);
          let piece = chunk.subarray(0, limit);
          chunk = chunk.subarray(limit);
          if (corruptAt >= sent && corruptAt < sent + piece.length) {
            piece = Buffer.from(piece);
            piece[corruptAt - sent] = (piece[corruptAt - sent] ?? 0) ^ 0xff;
          }
          if (bytesPerSecond) await this.pace(res, piece.length, bytesPerSecond);
          if (!res.write(piece)) await drainOrClose(res);
          sent += piece.length;
          this.count(blob.sha256, record, piece.length);
        }
      }
      if (sent >= cutAt) return cutConnection(res);
      res.end();
    } finally {
      source.destroy();
    }
  }

  private count(sha256: string, record: RecordedRequest, bytes: number): void {
    this.served.set(sha256, (this.served.get(sha256) ?? 0) + bytes);
    record.bodyBytes += bytes;
  }

  /** Waits until this connection may send `bytes` more at `rate` bytes/s (a schedule per connection). */
  private async pace(res: http.ServerResponse, bytes: number, rate: number): Promise<void> {
    const socket = res.socket;
    if (!socket) return;
    const state = this.pacing.get(socket) ?? { nextAt: 0 };
    this.pacing.set(socket, state);
    const now = performance.now();
    const startAt = Math.max(now, state.nextAt);
    state.nextAt = startAt + (bytes / rate) * 1000;
    if (startAt > now) await sleepUnlessClosed(res, startAt - now);
  }
}

type CountedFault = "cut" | "corrupt" | "stall" | "tooManyRequests" | "serverError";

/** A fault set with the number of answers each counted fault still applies to. */
class FaultState {
  private readonly left: Record<CountedFault, number>;

  constructor(readonly faults: CdnFaults) {
    this.left = {
      cut: faults.cut?.times ?? 1,
      corrupt: faults.corrupt?.times ?? 1,
      stall: faults.stall?.times ?? 1,
      tooManyRequests: faults.tooManyRequests?.times ?? 0,
      serverError: faults.serverError?.times ?? 0,
    };
  }

  /** Whether the fault applies to this answer (and uses one of its times). */
  take(fault: CountedFault): boolean {
    if (this.faults[fault] === undefined || this.left[fault] <= 0) return false;
    this.left[fault]--;
    return true;
  }
}

/** S3's XML error body. */
function s3Error(res: http.ServerResponse, status: number, code: string, message: string, headers: http.OutgoingHttpHeaders = {}): void {
  const body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message></Error>`;
  send(res, status, body, { "content-type": "application/xml", ...headers });
}

function sign(key: Buffer, sha256: string, expires: number): string {
  return createHmac("sha256", key).update(`${sha256}:${expires}`).digest("hex").slice(0, 32);
}

function sameSignature(a: string, b: string): boolean {
  return a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));
}

/** Ends the connection where the answer stands: the client gets the bytes sent so far, then the connection closes. */
function cutConnection(res: http.ServerResponse): void {
  res.flushHeaders();
  res.socket?.end();
}

function* slices(bytes: Buffer): Generator<Buffer> {
  for (let at = 0; at < bytes.length; at += 1 << 20) yield bytes.subarray(at, at + (1 << 20));
}

/** Bytes written at a time under a rate limit: about 20 writes a second, at most 256 KiB. */
function pieceSize(rate: number): number {
  return Math.max(1, Math.min(256 * 1024, Math.floor(rate / 20)));
}

function drainOrClose(res: http.ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      res.off("drain", done);
      res.off("close", done);
      resolve();
    };
    res.on("drain", done);
    res.on("close", done);
  });
}

function sleepUnlessClosed(res: http.ServerResponse, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      res.off("close", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    res.on("close", done);
  });
}

const digests = new Map<string, Promise<{ sha256: string; size: number }>>();

/** sha256 (hex) and size of a file, remembered per path, size and modification time (hashing GBs takes seconds). */
export async function fileDigest(file: string): Promise<{ sha256: string; size: number }> {
  const info = await stat(file);
  const key = `${file}\0${info.size}\0${info.mtimeMs}`;
  let digest = digests.get(key);
  if (!digest) {
    digest = (async () => {
      const hash = createHash("sha256");
      await pipeline(createReadStream(file, { highWaterMark: 1 << 20 }), hash);
      return { sha256: hash.digest("hex"), size: info.size };
    })();
    digests.set(key, digest);
  }
  return digest;
}
