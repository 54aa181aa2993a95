import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { buildApp, type App } from "../../src/app.js";
import { loadConfig } from "../../src/config/load.js";
import type { SettingName } from "../../src/config/schema.js";
import type { Engine, EngineName } from "../../src/engine/engine.js";
import { buildLlamaServer } from "./llama-server-binary.js";
import { freshSuiteDatabase } from "./postgres-server.js";

export interface TestServer {
  /** e.g. "http://127.0.0.1:43521" */
  baseUrl: string;
  app: App;
  /** The server's data directory (a fresh temp dir, removed by close). */
  home: string;
  close(): Promise<void>;
}

export interface StartOptions {
  /** Replaces the real node-llama-cpp engine (for tests of pure HTTP behaviour). */
  engine?: Engine;
  /** Settings on top of the test defaults (silent logs, one thread, temp home, the in-process engine). */
  config?: Partial<Record<SettingName, unknown>>;
  /** Runs on the built app before it listens (a test may add Fastify hooks to observe requests). */
  beforeListen?: (app: App) => void;
}

/**
 * Builds the real app over a temp home and listens on 127.0.0.1, on a free port. With AI_SERVER_TEST_DATABASE_URL
 * (`npm run test:postgres`), its state is in a fresh database of that PostgreSQL server, dropped by close, unless
 * the test names a database itself.
 */
export async function startServer(options: StartOptions = {}): Promise<TestServer> {
  const home = await mkdtemp(path.join(os.tmpdir(), "ai-server-test-"));
  const suiteDatabase = process.env.AI_SERVER_TEST_DATABASE_URL;
  const database = suiteDatabase && options.config?.databaseUrl === undefined ? await suiteDatabaseFor(suiteDatabase, options.config?.home) : undefined;
  // The in-process engine unless a test names one: its tests use fixtures in node-llama-cpp's tool-call syntax.
  const config = loadConfig({}, {
    home,
    host: "127.0.0.1:0",
    logLevel: "silent",
    threads: 1,
    engine: "llama-cpp",
    ...(database && { databaseUrl: database.url }),
    ...options.config,
  });
  let app: App;
  try {
    app = await buildApp(config, options.engine ? { engine: options.engine } : {});
  } catch (error) {
    await database?.drop();
    await rm(home, { recursive: true, force: true });
    throw error;
  }
  options.beforeListen?.(app);
  const address = await app.http.listen({ host: "127.0.0.1", port: 0 });
  return {
    baseUrl: address,
    app,
    home,
    async close() {
      // Also drop connections that never sent a request (undici opens some): Node does not count them as idle,
      // so a graceful close would wait for the 60 s headers timeout.
      const closing = app.close();
      app.http.server.closeAllConnections();
      await closing;
      await database?.drop();
      await rm(home, { recursive: true, force: true });
    },
  };
}

/** The databases of homes a test gave (`config.home`): a server started again on that home finds its state, as in SQLite. */
const homeDatabases = new Map<string, Promise<{ url: string; drop(): Promise<void> }>>();

/** A fresh database on the suite's PostgreSQL, or the one of the home a test gave (kept: the home outlives the server). */
async function suiteDatabaseFor(serverUrl: string, home: unknown): Promise<{ url: string; drop(): Promise<void> }> {
  if (typeof home !== "string") return freshSuiteDatabase(serverUrl);
  let database = homeDatabases.get(home);
  if (database === undefined) {
    database = freshSuiteDatabase(serverUrl);
    homeDatabases.set(home, database);
  }
  return { url: (await database).url, drop: async () => undefined };
}

/**
 * The real server on one engine, sized for the fixture models (no GPU, 1 thread, a 1024-token context unless
 * `config` says otherwise); fails when the engine asked for is not the one serving (no silent fallback).
 */
export async function startEngineServer(engine: EngineName, config: StartOptions["config"] = {}): Promise<TestServer> {
  const llamaServer = engine === "llama-server" ? { llamaServer: buildLlamaServer() } : {};
  const server = await startServer({ config: { gpu: "off", threads: 1, contextLength: 1024, numParallel: 1, engine, ...llamaServer, ...config } });
  if (server.app.services.engine !== engine) {
    await server.close();
    throw new Error(`the ${engine} engine was asked for, ${server.app.services.engine} serves`);
  }
  return server;
}

export async function sha256File(file: string): Promise<string> {
  const hash = createHash("sha256");
  await pipeline(createReadStream(file), hash);
  return `sha256:${hash.digest("hex")}`;
}

/** Uploads a file through POST /api/blobs/:digest, as the Ollama CLI does; returns its digest. */
export async function uploadBlob(baseUrl: string, file: string): Promise<string> {
  const digest = await sha256File(file);
  const response = await fetch(`${baseUrl}/api/blobs/${digest}`, {
    method: "POST",
    body: Readable.toWeb(createReadStream(file)) as ReadableStream<Uint8Array>,
    duplex: "half",
  } as RequestInit);
  if (response.status !== 201 && response.status !== 200) throw new Error(`blob upload: ${response.status} ${await response.text()}`);
  return digest;
}

/**
 * Creates model `name` from a GGUF file through the real HTTP path (blob upload, then /api/create with `files`),
 * with optional create fields (template, system, parameters, …).
 */
export async function createModel(baseUrl: string, name: string, file: string, extra: Record<string, unknown> = {}): Promise<void> {
  const digest = await uploadBlob(baseUrl, file);
  const response = await postJson(baseUrl, "/api/create", { model: name, files: { "model.gguf": digest }, stream: false, ...extra });
  if (response.status !== 200) throw new Error(`create ${name}: ${response.status} ${await response.text()}`);
}

export function postJson(baseUrl: string, route: string, body: unknown, init: RequestInit = {}): Promise<Response> {
  return fetch(`${baseUrl}${route}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
    ...init,
  });
}

/** Reads an NDJSON body into its objects (every line must be JSON). */
export async function readNdjson(response: Response): Promise<Array<Record<string, unknown>>> {
  const text = await response.text();
  return text
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}
