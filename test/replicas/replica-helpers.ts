import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { readFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { Readable } from "node:stream";
import pino from "pino";
import type { SettingName } from "../../src/config/schema.js";
import { sha256File, startServer, type TestServer } from "../helpers/start-server.js";

/** The admin key the replicas of a test share (AI_SERVER_ADMIN_KEY: each ensures it at start; peers present it). */
export const REPLICA_KEY = "replica-admin-key-0123456789abcdefghijklmnopqrstuvwxyz";

/** A log line of a replica, as pino writes it. */
export interface LogLine {
  level: number;
  msg?: string;
}

/** pino's level numbers. */
export const INFO = 30;
export const WARN = 40;

/** A replica: the real server on its own home, with the log lines it wrote. */
export interface Replica extends TestServer {
  logs: LogLine[];
  /** Requests it received, `METHOD url` (to see what its peers asked of it). */
  received: string[];
}

/** Starts a replica with keys on (the shared admin key unless `config` names another) and its log captured. */
export async function startReplica(config: Partial<Record<SettingName, unknown>> = {}): Promise<Replica> {
  const logs: LogLine[] = [];
  const received: string[] = [];
  const server = await startServer({
    config: { adminKey: REPLICA_KEY, logLevel: "info", ...config },
    beforeListen: (app) => {
      // Request loggers are children of the server's: they write to the stream their parent holds.
      (app.http.log as unknown as Record<symbol, unknown>)[pino.symbols.streamSym] = { write: (line: string) => void logs.push(JSON.parse(line) as LogLine) };
      app.http.addHook("onRequest", async (request) => void received.push(`${request.method} ${request.url}`));
    },
  });
  return { ...server, logs, received };
}

/** `Authorization: Bearer <key>`. */
export function bearer(key = REPLICA_KEY): Record<string, string> {
  return { authorization: `Bearer ${key}` };
}

/** Creates model `name` on a replica from a GGUF file (upload, then /api/create), with its admin key; returns the digest. */
export async function createOn(replica: TestServer, name: string, file: string, key = REPLICA_KEY): Promise<string> {
  const digest = await sha256File(file);
  const upload = await fetch(`${replica.baseUrl}/api/blobs/${digest}`, {
    method: "POST",
    headers: bearer(key),
    body: Readable.toWeb(createReadStream(file)) as ReadableStream<Uint8Array>,
    duplex: "half",
  } as RequestInit);
  if (upload.status !== 201 && upload.status !== 200) throw new Error(`upload: ${upload.status} ${await upload.text()}`);
  const create = await fetch(`${replica.baseUrl}/api/create`, {
    method: "POST",
    headers: { ...bearer(key), "content-type": "application/json" },
    body: JSON.stringify({ model: name, files: { "model.gguf": digest }, stream: false }),
  });
  if (create.status !== 200) throw new Error(`create ${name}: ${create.status} ${await create.text()}`);
  return digest;
}

/** The file a blob is stored in on a replica (whether or not it is there). */
export function blobPath(replica: TestServer, digest: string): string {
  return replica.app.services.store.blobs.pathOf(digest);
}

/** The sha256 of a stored blob's bytes, or undefined when it is not stored. */
export async function storedDigest(replica: TestServer, digest: string): Promise<string | undefined> {
  return sha256File(blobPath(replica, digest)).catch(() => undefined);
}

/** How the fake peer answers a GET of a blob it has. */
export type FakePeerMode = "absent" | "whole" | "corrupt" | "slow" | "cut";

/** A request the fake peer received. */
export interface PeerRequest {
  method: string;
  digest: string;
  range?: string;
  authorization?: string;
}

/**
 * A fake peer replica on loopback. It answers HEAD and GET /api/blobs/{digest} as a replica does, but misbehaves on
 * command: `corrupt` sends bytes of the right length that hash to something else, `slow` trickles them, `cut` drops
 * the first connection halfway (and honours the Range of the next request), `absent` has nothing. A real replica
 * cannot be made to do any of that, which is why this one is fake; the honest path uses real replicas.
 */
export class FakePeer {
  mode: FakePeerMode = "absent";
  readonly requests: PeerRequest[] = [];
  private readonly blobs = new Map<string, Buffer>();

  private constructor(private readonly server: Server) {}

  static async start(): Promise<FakePeer> {
    const server = createServer();
    const peer = new FakePeer(server);
    server.on("request", (request, response) => void peer.answer(request, response));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return peer;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** Serves the file's bytes; returns their digest. */
  async add(file: string): Promise<string> {
    const bytes = await readFile(file);
    const digest = `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
    this.blobs.set(digest, bytes);
    return digest;
  }

  /** The requests for one blob by method. */
  requestsFor(digest: string, method: string): PeerRequest[] {
    return this.requests.filter((r) => r.digest === digest && r.method === method);
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private async answer(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const digest = decodeURIComponent((request.url ?? "").replace(/^\/api\/blobs\//, ""));
    this.requests.push({
      method: request.method ?? "",
      digest,
      ...(request.headers.range !== undefined && { range: request.headers.range }),
      ...(request.headers.authorization !== undefined && { authorization: request.headers.authorization }),
    });
    const bytes = this.blobs.get(digest);
    if (bytes === undefined || this.mode === "absent") return void response.writeHead(404, { "content-type": "application/json" }).end('{"error":"not found"}');
    const headers = { etag: `"${digest}"`, "x-content-digest": digest, "content-type": "application/octet-stream" };
    if (request.method === "HEAD") return void response.writeHead(200).end();
    const from = Number(/^bytes=(\d+)-$/.exec(request.headers.range ?? "")?.[1] ?? 0);
    if (from > 0) {
      response.writeHead(206, { ...headers, "content-length": bytes.length - from, "content-range": `bytes ${from}-${bytes.length - 1}/${bytes.length}` });
      return void response.end(bytes.subarray(from));
    }
    response.writeHead(200, { ...headers, "content-length": bytes.length });
    if (this.mode === "corrupt") {
      const corrupt = Buffer.from(bytes);
      corrupt[corrupt.length >> 1] = (corrupt[corrupt.length >> 1] ?? 0) ^ 0xff;
      return void response.end(corrupt);
    }
    if (this.mode === "cut") {
      response.write(bytes.subarray(0, bytes.length >> 1), () => response.socket?.destroy());
      return;
    }
    if (this.mode === "slow") {
      for (let at = 0; at < bytes.length && !response.destroyed; at += 32 * 1024) {
        response.write(bytes.subarray(at, at + 32 * 1024));
        await new Promise((resolve) => setTimeout(resolve, 40));
      }
      return void response.end();
    }
    response.end(bytes);
  }
}
