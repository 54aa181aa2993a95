import { Agent, request as httpRequest, type IncomingHttpHeaders } from "node:http";
import { connect, type Socket } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import type { FuzzCase } from "./fuzz-cases.js";

/** What came back for one fuzzed request. */
export interface FuzzResult {
  /** Absent when no response came (the connection closed or broke first). */
  status?: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** The socket error or close that ended the exchange without a response. */
  error?: string;
  /** No response within the time allowed. */
  timedOut?: boolean;
}

/** Sends fuzzed requests to one server: node:http with keep-alive where it can, raw sockets where it cannot. */
export class FuzzClient {
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 16 });
  private readonly host: string;
  private readonly port: number;

  constructor(
    baseUrl: string,
    private readonly timeoutMs = 15_000,
  ) {
    const url = new URL(baseUrl);
    this.host = url.hostname;
    this.port = Number(url.port);
  }

  async send(fuzz: FuzzCase): Promise<FuzzResult> {
    if (fuzz.delivery === "raw") return this.raw(fuzz.raw ?? Buffer.alloc(0));
    if (fuzz.delivery === "trickle") return this.trickle(fuzz);
    if (fuzz.delivery === "stall-close") return this.stallThenClose(fuzz);
    try {
      return await this.whole(fuzz);
    } catch (error) {
      // node:http refuses some paths and header values (control bytes): the same bytes go out on a raw socket.
      if (isClientRefusal(error)) return this.raw(rawRequest(fuzz, { close: true }));
      throw error;
    }
  }

  /**
   * The request's headers and its body in `chunks` pieces, `gapMs` apart, then whatever the server answers (`parts`
   * below `chunks`: only that many pieces go out, and the rest never comes).
   */
  async sendSlowly(fuzz: FuzzCase, options: { chunks: number; gapMs: number; parts?: number }): Promise<FuzzResult> {
    return this.exchange(async (socket) => {
      socket.write(rawRequest(fuzz, { close: true, withoutBody: true }));
      const body = fuzz.body ?? Buffer.alloc(0);
      const size = Math.ceil(body.length / options.chunks);
      for (let i = 0; i < (options.parts ?? options.chunks); i++) {
        await sleep(options.gapMs);
        if (socket.destroyed) return;
        socket.write(body.subarray(i * size, (i + 1) * size));
      }
    });
  }

  close(): void {
    this.agent.destroy();
  }

  private whole(fuzz: FuzzCase): Promise<FuzzResult> {
    return new Promise((resolve, reject) => {
      const headers: Record<string, string> = { ...fuzz.headers };
      if (fuzz.body !== undefined) headers["content-length"] = String(fuzz.body.length);
      let settled = false;
      const finish = (result: FuzzResult): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(result);
      };
      const req = httpRequest({ host: this.host, port: this.port, method: fuzz.method, path: fuzz.path, headers, agent: this.agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () => finish({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on("error", (error) => finish({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks), error: error.message }));
      });
      const timer = setTimeout(() => {
        finish({ headers: {}, body: Buffer.alloc(0), timedOut: true });
        req.destroy();
      }, this.timeoutMs);
      // A server that answers early (413) may close before the body is all out: the answer still counts if it came.
      req.on("error", (error) => setImmediate(() => finish({ headers: {}, body: Buffer.alloc(0), error: `${(error as NodeJS.ErrnoException).code ?? ""} ${error.message}` })));
      try {
        req.end(fuzz.body);
      } catch (error) {
        settled = true;
        clearTimeout(timer);
        req.destroy();
        reject(error);
      }
    });
  }

  /**
   * Writes `bytes` on a fresh connection and reads whatever comes back until the server closes it (the request says
   * `Connection: close`, or is one the server refuses). The client does not half-close first: Node's server drops a
   * request still in progress when its client ends the connection.
   */
  private raw(bytes: Buffer): Promise<FuzzResult> {
    return this.exchange(async (socket) => {
      socket.write(bytes);
    });
  }

  /** The whole request, its body one byte at a time with pauses of a millisecond or two. */
  private trickle(fuzz: FuzzCase): Promise<FuzzResult> {
    return this.exchange(async (socket) => {
      const request = rawRequest(fuzz, { close: true, withoutBody: true });
      socket.write(request);
      for (const byte of fuzz.body ?? Buffer.alloc(0)) {
        if (socket.destroyed) return;
        socket.write(Buffer.from([byte]));
        await sleep(1 + (byte % 2));
      }
    });
  }

  /** Headers that announce the whole body, part of it, a pause, then the connection closed: nothing to wait for. */
  private async stallThenClose(fuzz: FuzzCase): Promise<FuzzResult> {
    const socket = await this.connect();
    socket.on("error", () => undefined);
    socket.write(rawRequest(fuzz, { close: false, withoutBody: true }));
    const body = fuzz.body ?? Buffer.alloc(0);
    socket.write(body.subarray(0, Math.floor(body.length / 2)));
    await sleep(50 + (body.length % 200));
    socket.destroy();
    return { headers: {}, body: Buffer.alloc(0), error: "closed by the client" };
  }

  private connect(): Promise<Socket> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: this.host, port: this.port }, () => resolve(socket));
      socket.once("error", reject);
    });
  }

  /** Runs `write` on a fresh connection and reads the answer until the server closes it. */
  private async exchange(write: (socket: Socket) => Promise<void>): Promise<FuzzResult> {
    const socket = await this.connect();
    const chunks: Buffer[] = [];
    let error: string | undefined;
    const closed = new Promise<void>((resolve) => {
      socket.on("data", (chunk: Buffer) => chunks.push(chunk));
      socket.on("error", (e: NodeJS.ErrnoException) => (error = `${e.code ?? ""} ${e.message}`));
      socket.on("close", () => resolve());
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      socket.destroy();
    }, this.timeoutMs);
    await write(socket).catch((e: Error) => (error = e.message));
    await closed;
    clearTimeout(timer);
    const parsed = parseResponse(Buffer.concat(chunks));
    const late = timedOut ? { timedOut: true } : {};
    if (parsed === undefined) return { headers: {}, body: Buffer.alloc(0), error: error ?? "closed without a response", ...late };
    return { ...parsed, ...late };
  }
}

function isClientRefusal(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return code === "ERR_INVALID_CHAR" || code === "ERR_UNESCAPED_CHARACTERS" || code === "ERR_INVALID_HTTP_TOKEN";
}

/** The request as bytes (latin1 for the request line and headers, as node:http writes them). */
function rawRequest(fuzz: FuzzCase, options: { close: boolean; withoutBody?: boolean }): Buffer {
  const headers: Record<string, string> = { host: "localhost", ...fuzz.headers };
  if (fuzz.body !== undefined) headers["content-length"] = String(fuzz.body.length);
  if (options.close) headers.connection = "close";
  const head = `${fuzz.method} ${fuzz.path} HTTP/1.1\r\n${Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`).join("")}\r\n`;
  return Buffer.concat([Buffer.from(head, "latin1"), options.withoutBody ? Buffer.alloc(0) : (fuzz.body ?? Buffer.alloc(0))]);
}

/** The first HTTP response in `data` (Content-Length, chunked, or up to the close); undefined when there is none. */
export function parseResponse(data: Buffer): { status: number; headers: IncomingHttpHeaders; body: Buffer } | undefined {
  const end = data.indexOf("\r\n\r\n");
  if (end === -1) return undefined;
  const lines = data.subarray(0, end).toString("latin1").split("\r\n");
  const status = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? "")?.[1];
  if (status === undefined) return undefined;
  const headers: IncomingHttpHeaders = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  let body = data.subarray(end + 4);
  if (String(headers["transfer-encoding"] ?? "").toLowerCase() === "chunked") body = unchunk(body);
  else if (headers["content-length"] !== undefined) body = body.subarray(0, Number(headers["content-length"]));
  return { status: Number(status), headers, body };
}

function unchunk(data: Buffer): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  while (at < data.length) {
    const lineEnd = data.indexOf("\r\n", at);
    if (lineEnd === -1) break;
    const size = parseInt(data.subarray(at, lineEnd).toString("latin1"), 16);
    if (!Number.isFinite(size) || size === 0) break;
    parts.push(data.subarray(lineEnd + 2, lineEnd + 2 + size));
    at = lineEnd + 2 + size + 2;
  }
  return Buffer.concat(parts);
}

/**
 * What is wrong with the answer to `fuzz`, or undefined when it is what the server owes: never a 5xx, never a
 * silence or a dropped connection (but where the client itself closed), a 4xx where the request is invalid (the exact
 * status where the oracle knows it), and every error a JSON body in the route's protocol shape.
 */
export function problemWith(fuzz: FuzzCase, result: FuzzResult): string | undefined {
  if (fuzz.delivery === "stall-close") return undefined;
  if (result.timedOut) return "no answer in time (a hang)";
  if (result.status === undefined) return `no response: ${result.error ?? "the connection closed"}`;
  const status = result.status;
  if (status >= 500) return `a ${status}: ${result.body.toString("utf8").slice(0, 300)}`;
  if (status < 200 || (status >= 300 && status < 400)) return `unexpected status ${status}`;
  if (fuzz.expect.kind === "reject") {
    if (status < 400) return `a ${status} for a request that must be refused`;
    if (fuzz.expect.status !== undefined && status !== fuzz.expect.status) return `a ${status} where a ${fuzz.expect.status} is owed: ${result.body.toString("utf8").slice(0, 200)}`;
  }
  if (status < 400 || fuzz.method === "HEAD") return undefined;
  return shapeProblem(fuzz, result);
}

function shapeProblem(fuzz: FuzzCase, result: FuzzResult): string | undefined {
  const type = String(result.headers["content-type"] ?? "");
  if (!type.includes("application/json")) return `error body is ${type || "untyped"}, not JSON: ${result.body.toString("utf8").slice(0, 200)}`;
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(result.body.toString("utf8")) as Record<string, unknown>;
  } catch {
    return `error body does not parse as JSON: ${result.body.toString("utf8").slice(0, 200)}`;
  }
  const error = body.error as Record<string, unknown> | string | undefined;
  const ok =
    fuzz.protocol === "ollama"
      ? typeof error === "string" && error !== ""
      : fuzz.protocol === "openai"
        ? typeof error === "object" && error !== null && typeof error.message === "string" && typeof error.type === "string"
        : body.type === "error" && typeof error === "object" && error !== null && typeof error.type === "string" && typeof error.message === "string";
  return ok ? undefined : `error body is not in ${fuzz.protocol}'s shape: ${result.body.toString("utf8").slice(0, 200)}`;
}

/** Runs `cases` through `client`, `concurrency` at a time, in order of start; returns each result by index. */
export async function runAll(client: FuzzClient, cases: readonly FuzzCase[], concurrency: number): Promise<FuzzResult[]> {
  const results: FuzzResult[] = new Array<FuzzResult>(cases.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < cases.length) {
      const index = next++;
      results[index] = await client.send(cases[index]!);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return results;
}
