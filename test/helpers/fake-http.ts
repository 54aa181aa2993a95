/**
 * Plumbing shared by the loopback stand-ins for the internet (the Hugging Face Hub, Ollama's registry and the CDN
 * both redirect large files to): a plain node:http server on 127.0.0.1, a log of every request, JSON answers and
 * HTTP byte ranges (RFC 9110 §14).
 */
import http from "node:http";
import type { AddressInfo } from "node:net";

/** One request as a fake saw it: what tests assert on ("nothing was downloaded", "the token reached the hub"). */
export interface RecordedRequest {
  method: string;
  /** Path and query as sent, e.g. `/api/models/owner/repo?blobs=true`. */
  url: string;
  /** The decoded path, without the query. */
  path: string;
  query: URLSearchParams;
  headers: http.IncomingHttpHeaders;
  /** The `Range` header, if any. */
  range: string | undefined;
  /** The `Authorization` header, if any. */
  authorization: string | undefined;
  /** The answer's status, set once it is sent (0 until then). */
  status: number;
  /** Body bytes handed to the connection. */
  bodyBytes: number;
  /** Whether the whole answer was sent (false when the fake cut it, or the client went away). */
  completed: boolean;
}

/** A listening fake: its origin (`http://127.0.0.1:PORT`) and a close that also drops open connections. */
export interface LoopbackServer {
  url: string;
  server: http.Server;
  close(): Promise<void>;
}

/** Listens on 127.0.0.1, on a free port. A handler that throws answers 500 (or drops the connection mid-answer). */
export async function listenLoopback(handler: (req: http.IncomingMessage, res: http.ServerResponse) => Promise<void>): Promise<LoopbackServer> {
  const server = http.createServer((req, res) => {
    handler(req, res).catch((error: unknown) => {
      if (res.headersSent) res.destroy();
      else sendJson(res, 500, { error: `fake server error: ${String(error)}` });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** Appends `req` to `log` and fills in its status and completion when the answer ends. */
export function recordRequest(log: RecordedRequest[], req: http.IncomingMessage, res: http.ServerResponse): RecordedRequest {
  const parsed = new URL(req.url ?? "/", "http://fake");
  const record: RecordedRequest = {
    method: req.method ?? "GET",
    url: req.url ?? "/",
    path: safeDecode(parsed.pathname),
    query: parsed.searchParams,
    headers: req.headers,
    range: req.headers.range,
    authorization: req.headers.authorization,
    status: 0,
    bodyBytes: 0,
    completed: false,
  };
  log.push(record);
  res.once("close", () => {
    record.status = res.statusCode;
    record.completed = res.writableFinished;
  });
  return record;
}

function safeDecode(pathname: string): string {
  try {
    return decodeURIComponent(pathname);
  } catch {
    return pathname;
  }
}

/** Sends `body` as JSON with the given status and extra headers. */
export function sendJson(res: http.ServerResponse, status: number, body: unknown, headers: http.OutgoingHttpHeaders = {}): void {
  send(res, status, JSON.stringify(body), { "content-type": "application/json; charset=utf-8", ...headers });
}

/** Sends a small text body (no Range handling). */
export function send(res: http.ServerResponse, status: number, body: string | Buffer, headers: http.OutgoingHttpHeaders = {}): void {
  const bytes = typeof body === "string" ? Buffer.from(body) : body;
  res.writeHead(status, { "content-length": bytes.length, ...headers });
  res.end(res.req.method === "HEAD" ? undefined : bytes);
}

/** A byte range resolved against a body's size: absent or ignored (whole body), satisfiable, or not. */
export type ResolvedRange = { kind: "whole" } | { kind: "part"; start: number; end: number } | { kind: "unsatisfiable" };

/**
 * Resolves a `Range` header against a body of `size` bytes as HTTP servers do: `bytes=a-b`, `bytes=a-` and the
 * suffix form `bytes=-n`; `end` is inclusive and clamped to the body. A malformed header, another unit or several
 * ranges are ignored (the whole body is sent, which RFC 9110 allows); a start past the end is unsatisfiable (416).
 */
export function resolveRange(header: string | undefined, size: number): ResolvedRange {
  const match = header === undefined ? null : /^\s*bytes=(\d*)-(\d*)\s*$/i.exec(header);
  if (!match) return { kind: "whole" };
  const [, first = "", last = ""] = match;
  if (first === "" && last === "") return { kind: "whole" };
  if (first === "") {
    const suffix = Number(last);
    if (suffix === 0 || size === 0) return { kind: "unsatisfiable" };
    return { kind: "part", start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(first);
  const end = last === "" ? size - 1 : Math.min(Number(last), size - 1);
  if (last !== "" && Number(last) < start) return { kind: "whole" }; // invalid: ignored
  if (start >= size) return { kind: "unsatisfiable" };
  return { kind: "part", start, end };
}

/**
 * Sends an in-memory body with Range support (200 whole, 206 part with Content-Range, 416 unsatisfiable) and
 * `Accept-Ranges: bytes`; HEAD gets the headers alone. Counts the body bytes into `record`.
 */
export function sendBytes(res: http.ServerResponse, body: Buffer, headers: http.OutgoingHttpHeaders, record?: RecordedRequest): void {
  const range = resolveRange(res.req.headers.range, body.length);
  if (range.kind === "unsatisfiable") {
    send(res, 416, "", { "content-range": `bytes */${body.length}`, ...headers });
    return;
  }
  const part = range.kind === "part" ? body.subarray(range.start, range.end + 1) : body;
  res.writeHead(range.kind === "part" ? 206 : 200, {
    ...headers,
    "accept-ranges": "bytes",
    "content-length": part.length,
    ...(range.kind === "part" && { "content-range": `bytes ${range.start}-${range.end}/${body.length}` }),
  });
  if (res.req.method === "HEAD") {
    res.end();
    return;
  }
  if (record) record.bodyBytes += part.length;
  res.end(part);
}
