import { createHash, randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { open } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";

/**
 * A small configurable HTTP file server on loopback that stands in for the internet in download tests and benches
 * (a CDN, the Hub's resolve endpoint, a registry's blob route): Range support, redirects, and the ways real servers
 * misbehave, each switched on for the next N responses or always.
 */

/** A generated file and its hashes. */
export interface TestFile {
  path: string;
  size: number;
  /** "sha256:<hex>" */
  sha256: string;
  /** The git blob id: sha1 of "blob <size>\0" + bytes, hex. */
  gitBlobSha1: string;
}

/** Writes `size` random bytes to `file` (in 1 MiB pieces, so multi-GB files are fine) and hashes them. */
export async function writeRandomFile(file: string, size: number): Promise<TestFile> {
  const sha256 = createHash("sha256");
  const sha1 = createHash("sha1").update(`blob ${size}\0`);
  const handle = await open(file, "w");
  try {
    for (let written = 0; written < size; ) {
      const piece = randomBytes(Math.min(1 << 20, size - written));
      await handle.write(piece);
      sha256.update(piece);
      sha1.update(piece);
      written += piece.length;
    }
  } finally {
    await handle.close();
  }
  return { path: file, size, sha256: `sha256:${sha256.digest("hex")}`, gitBlobSha1: sha1.digest("hex") };
}

/** Something that happens to the next `times` responses (Infinity: all of them). */
interface Countdown {
  times: number;
}

/** The server's behaviour; countdowns are spent by the responses they apply to. */
export interface RangeServerSwitches {
  /** Answer `Range` with 206 (default true); false answers every request with the whole file (200). */
  ranges: boolean;
  /** Requests for /file are redirected (302) here: another server's URL (another origin) or a path of this one. */
  redirectTo: string | undefined;
  /** Close the connection after this many body bytes. */
  cut: (Countdown & { afterBytes: number }) | undefined;
  /** Stop sending after this many body bytes, leaving the connection open. */
  stall: (Countdown & { afterBytes: number }) | undefined;
  /** Flip the byte at this offset of the file in responses that carry it. */
  corrupt: (Countdown & { offset: number }) | undefined;
  /** Answer 429 with these headers (Retry-After, RateLimit). */
  tooManyRequests: (Countdown & { headers: Record<string, string> }) | undefined;
  /** Answer with this status, headers and body instead of the file. */
  fail: (Countdown & { status: number; headers?: Record<string, string>; body?: string }) | undefined;
  /** Per-response (so per-connection) rate limit, as CDNs have. */
  bytesPerSecond: number | undefined;
}

/** One request as the server saw it. */
export interface ServedRequest {
  path: string;
  range: string | undefined;
  authorization: string | undefined;
  status: number;
}

/** A running server, what it saw, and its switches. */
export interface RangeServer {
  /** The file's URL: `${origin}/file`. */
  url: string;
  origin: string;
  /** Change them at any time; they apply to the responses that start afterwards. */
  switches: RangeServerSwitches;
  /** Every request, in arrival order. */
  requests: ServedRequest[];
  /** Body bytes handed to sockets (of the file; error bodies are not counted). */
  bytesServed: number;
  /** The most requests in progress at once. */
  peakConcurrency: number;
  /** Clears `requests`, `bytesServed` and `peakConcurrency`. */
  resetCounts(): void;
  close(): Promise<void>;
}

/** Serves `file` (any path but a redirected /file) on 127.0.0.1, port 0. */
export async function startRangeServer(file: { path: string; size: number }, switches: Partial<RangeServerSwitches> = {}): Promise<RangeServer> {
  const state: RangeServer = {
    url: "",
    origin: "",
    switches: { ranges: true, redirectTo: undefined, cut: undefined, stall: undefined, corrupt: undefined, tooManyRequests: undefined, fail: undefined, bytesPerSecond: undefined, ...switches },
    requests: [],
    bytesServed: 0,
    peakConcurrency: 0,
    resetCounts() {
      state.requests = [];
      state.bytesServed = 0;
      state.peakConcurrency = 0;
    },
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  let inProgress = 0;
  const server = http.createServer((req, res) => {
    state.peakConcurrency = Math.max(state.peakConcurrency, ++inProgress);
    res.on("close", () => inProgress--);
    serve(state, file, req, res).catch(() => res.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  state.origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  state.url = `${state.origin}/file`;
  return state;
}

async function serve(state: RangeServer, file: { path: string; size: number }, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const { switches } = state;
  const seen: ServedRequest = { path: req.url ?? "", range: req.headers.range, authorization: req.headers.authorization, status: 0 };
  state.requests.push(seen);
  const reply = (status: number, headers: Record<string, string>, body = ""): void => {
    seen.status = status;
    res.writeHead(status, headers).end(body);
  };
  const limited = take(switches.tooManyRequests);
  if (limited) return reply(429, limited.headers, "rate limited");
  const failure = take(switches.fail);
  if (failure) return reply(failure.status, failure.headers ?? {}, failure.body);
  if (switches.redirectTo !== undefined && seen.path === "/file") return reply(302, { location: switches.redirectTo });

  const range = switches.ranges ? parseRange(req.headers.range, file.size) : undefined;
  if (range === "unsatisfiable") return reply(416, { "content-range": `bytes */${file.size}` });
  const [first, last] = range ?? [0, file.size - 1];
  seen.status = range ? 206 : 200;
  res.writeHead(seen.status, {
    "content-length": String(last - first + 1),
    "accept-ranges": switches.ranges ? "bytes" : "none",
    ...(range && { "content-range": `bytes ${first}-${last}/${file.size}` }),
  });
  const corrupt = switches.corrupt && switches.corrupt.offset >= first && switches.corrupt.offset <= last ? take(switches.corrupt) : undefined;
  const cut = take(switches.cut);
  const stall = take(switches.stall);
  const rate = switches.bytesPerSecond;
  if (!corrupt && !cut && !stall && !rate) {
    const source = createReadStream(file.path, { start: first, end: last, highWaterMark: 1 << 20 });
    source.on("data", (chunk) => (state.bytesServed += chunk.length));
    source.pipe(res);
    res.on("close", () => source.destroy());
    return;
  }
  const stopAt = Math.min(cut?.afterBytes ?? Infinity, stall?.afterBytes ?? Infinity);
  const started = Date.now();
  let sent = 0;
  const source = createReadStream(file.path, { start: first, end: last, highWaterMark: 16 << 10 });
  try {
    for await (const chunk of source as AsyncIterable<Buffer>) {
      let piece = chunk;
      if (corrupt && corrupt.offset >= first + sent && corrupt.offset < first + sent + piece.length) {
        piece = Buffer.from(piece);
        piece[corrupt.offset - first - sent]! ^= 0xff;
      }
      if (sent + piece.length >= stopAt) piece = piece.subarray(0, stopAt - sent);
      if (!(await write(res, piece))) return;
      sent += piece.length;
      state.bytesServed += piece.length;
      if (sent >= stopAt) {
        if (cut) res.socket?.destroy();
        else await new Promise((resolve) => res.once("close", resolve));
        return;
      }
      if (rate) await sleep(Math.max(0, started + (sent / rate) * 1000 - Date.now()));
    }
    res.end();
  } finally {
    source.destroy();
  }
}

/** Writes and waits until the bytes are handed to the socket; false when the connection is gone. */
function write(res: http.ServerResponse, chunk: Buffer): Promise<boolean> {
  if (res.destroyed) return Promise.resolve(false);
  return new Promise((resolve) => {
    const closed = (): void => resolve(false);
    res.once("close", closed);
    res.write(chunk, (error) => {
      res.off("close", closed);
      resolve(!error);
    });
  });
}

function take<T extends Countdown>(countdown: T | undefined): T | undefined {
  if (!countdown || countdown.times <= 0) return undefined;
  countdown.times--;
  return countdown;
}

/** A single `bytes=a-b` / `bytes=a-` range; undefined when there is none (or it is not one this server parses). */
function parseRange(header: string | undefined, size: number): [number, number] | "unsatisfiable" | undefined {
  const match = /^bytes=(\d+)-(\d*)$/.exec(header ?? "");
  if (!match) return undefined;
  const first = Number(match[1]);
  const last = match[2] ? Math.min(Number(match[2]), size - 1) : size - 1;
  return first >= size || last < first ? "unsatisfiable" : [first, last];
}
