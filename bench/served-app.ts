import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { buildApp, type App } from "../src/app.js";
import type { Config } from "../src/config/schema.js";
import type { ModelStore } from "../src/store/model-store.js";
import { openModelStore } from "../src/store/open-store.js";
import { freePort } from "../test/helpers/free-port.js";

/** The real app listening on 127.0.0.1:`port`, in a throw-away home that `close` removes. */
export interface ServedApp {
  app: App;
  port: number;
  close(): Promise<void>;
}

/** Builds the app in a fresh home (config.home is replaced), lets `fill` put models in its store, and listens. */
export async function serveApp(config: Config, fill: (store: ModelStore) => Promise<void>): Promise<ServedApp> {
  const home = await mkdtemp(path.join(os.tmpdir(), "ai-server-bench-"));
  const app = await buildApp({ ...config, home });
  const close = async (): Promise<void> => {
    await app.close();
    await rm(home, { recursive: true, force: true });
  };
  try {
    await fill(app.services.store);
    await app.http.listen({ host: "127.0.0.1", port: 0 });
    return { app, port: (app.http.server.address() as AddressInfo).port, close };
  } catch (error) {
    await close();
    throw error;
  }
}

/** ai-server in a process of its own, as deployed, listening on 127.0.0.1:`port`, in a throw-away home. */
export interface SpawnedApp {
  port: number;
  /** The server's process id (for its memory and CPU time in /proc). */
  pid: number;
  close(): Promise<void>;
}

/**
 * Fills a fresh home's store with `fill`, then starts the server from this checkout's source on it (`src/cli/main.ts
 * serve`) with `settings` (AI_SERVER_* variables) over this process's environment, and waits until /health answers.
 */
export async function spawnApp(settings: Record<string, string>, fill: (store: ModelStore) => Promise<void>): Promise<SpawnedApp> {
  const home = await mkdtemp(path.join(os.tmpdir(), "ai-server-bench-"));
  const removeHome = (): Promise<void> => rm(home, { recursive: true, force: true });
  try {
    const opened = await openModelStore(home);
    try {
      await fill(opened.store);
    } finally {
      await opened.close();
    }
    const port = await freePort();
    const main = fileURLToPath(new URL("../src/cli/main.ts", import.meta.url));
    const env = { ...process.env, ...settings, AI_SERVER_HOME: home, AI_SERVER_HOST: `127.0.0.1:${port}` };
    // On SIGTERM it unloads its models (and stops their llama-server processes) before it exits.
    const server = await startServer(process.execPath, ["--import", "tsx", main, "serve"], port, { env, startMs: 60_000, stopMs: 15_000 });
    return {
      port,
      pid: server.child.pid ?? 0,
      async close() {
        await server.stop();
        await removeHome();
      },
    };
  } catch (error) {
    await removeHome();
    throw error;
  }
}

/** A server process started by `startServer`. */
export interface ServerChild {
  readonly child: ChildProcess;
  /** SIGTERM, then SIGKILL if it has not exited within the grace time; resolves once it has exited. */
  stop(): Promise<void>;
}

/**
 * Spawns `command` and waits until it answers GET /health with 200 on 127.0.0.1:`port`; if it exits first or does
 * not answer within `startMs`, it is stopped and the promise rejects with the last lines of its standard error.
 */
export async function startServer(
  command: string,
  args: string[],
  port: number,
  options: { env?: NodeJS.ProcessEnv; startMs: number; stopMs: number },
): Promise<ServerChild> {
  const child = spawn(command, args, { stdio: ["ignore", "ignore", "pipe"], ...(options.env && { env: options.env }) });
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => void (stderr = (stderr + chunk.toString()).slice(-4000)));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const running = (): boolean => child.exitCode === null && child.signalCode === null;
  const stop = async (): Promise<void> => {
    if (!running()) return;
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), options.stopMs);
    await exited;
    clearTimeout(timer);
  };
  const lastLines = (): string => stderr.trim().split("\n").slice(-3).join(" / ");
  const deadline = Date.now() + options.startMs;
  for (;;) {
    if (!running()) throw new Error(`${path.basename(command)} exited with ${child.exitCode ?? child.signalCode}: ${lastLines()}`);
    if ((await healthStatus(port)) === 200) return { child, stop };
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`${path.basename(command)} did not answer /health within ${options.startMs / 1000} s: ${lastLines()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** GET /health's status on 127.0.0.1:`port`, 0 when nothing answers. */
export function healthStatus(port: number): Promise<number> {
  return new Promise((resolve) => {
    const request = http.get({ host: "127.0.0.1", port, path: "/health", agent: false }, (response) => {
      response.resume();
      resolve(response.statusCode ?? 0);
    });
    request.on("error", () => resolve(0));
  });
}

export { freePort };
