import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { createInterface } from "node:readline";
import { freePort } from "./free-port.js";

/** `ai-server serve` running as a child process (the real entry point: signals, exit code, logs). */
export interface ServeProcess {
  child: ChildProcess;
  /** "http://127.0.0.1:PORT" (https when `tls`). */
  baseUrl: string;
  /** Every log line so far (pino JSON), in order. */
  readonly logs: Array<Record<string, unknown>>;
  /** Resolves with the first log line (past or future) whose `msg` matches. */
  waitForLog(pattern: RegExp): Promise<Record<string, unknown>>;
  /** Resolves with the exit code (or signal) once the process has exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Kills it (SIGKILL) if it still runs, and waits for the exit. */
  kill(): Promise<void>;
}

const cli = path.resolve("src/cli/main.ts");

/**
 * Starts `ai-server serve` (through tsx, as the CLI tests run it) on a free loopback port with `env` on top of a
 * clean environment for the server (no AI_SERVER_* or HF_* inherited), and waits until it logs that it is ready.
 */
export async function startServeProcess(env: Record<string, string>, options: { tls?: boolean } = {}): Promise<ServeProcess> {
  const port = await freePort();
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^(AI_SERVER_|HF_)/.test(key)));
  const child = spawn(process.execPath, ["--import", "tsx", cli, "serve"], {
    env: { ...inherited, AI_SERVER_HOST: `127.0.0.1:${port}`, AI_SERVER_LOG_LEVEL: "info", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const logs: Array<Record<string, unknown>> = [];
  const waiters: Array<{ pattern: RegExp; resolve: (line: Record<string, unknown>) => void }> = [];
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  createInterface({ input: child.stdout! }).on("line", (text) => {
    let line: Record<string, unknown>;
    try {
      line = JSON.parse(text) as Record<string, unknown>;
    } catch {
      line = { msg: text };
    }
    logs.push(line);
    for (const waiter of [...waiters]) {
      if (waiter.pattern.test(String(line.msg))) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(line);
      }
    }
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  const waitForLog = (pattern: RegExp): Promise<Record<string, unknown>> => {
    const seen = logs.find((line) => pattern.test(String(line.msg)));
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      waiters.push({ pattern, resolve });
      void exited.then(({ code, signal }) => reject(new Error(`the server exited (${code ?? signal}) before logging ${pattern}; stderr: ${stderr}`)));
    });
  };
  await waitForLog(/ai-server is ready/);
  return {
    child,
    baseUrl: `${options.tls ? "https" : "http"}://127.0.0.1:${port}`,
    logs,
    waitForLog,
    exited,
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await exited;
    },
  };
}
