import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { freePort } from "./free-port.js";

/** How long a starting redis-server may take to answer PING. */
const START_TIMEOUT_MS = 10_000;

/** Why the Redis tests cannot run here (no redis-server binary), or undefined when they can. */
export function redisSkipReason(): string | undefined {
  const found = spawnSync("redis-server", ["--version"], { encoding: "utf8" });
  return found.status === 0 ? undefined : "redis-server is not installed (Debian: apt-get install redis-server; .ci/run installs it)";
}

/**
 * A real redis-server (the distribution's binary) on a free loopback port, in a temp directory, persisting nothing
 * (`--save '' --appendonly no`). `stop` and `start` again keep the port, so a test can take Redis away and bring it
 * back; `close` stops it and removes the directory.
 */
export class RedisServer {
  private process: ChildProcess | undefined;

  private constructor(
    readonly port: number,
    private readonly dir: string,
  ) {}

  /** redis://127.0.0.1:<port>/<db> */
  url(db = 0): string {
    return `redis://127.0.0.1:${this.port}/${db}`;
  }

  static async start(): Promise<RedisServer> {
    const dir = await mkdtemp(path.join(os.tmpdir(), "ai-server-redis-"));
    const server = new RedisServer(await freePort(), dir);
    await server.start();
    return server;
  }

  /** Starts redis-server (again) and waits until it answers PING. */
  async start(): Promise<void> {
    const args = ["--port", String(this.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", this.dir, "--daemonize", "no", "--loglevel", "warning"];
    const child = spawn("redis-server", args, { stdio: ["ignore", "ignore", "pipe"] });
    this.process = child;
    let stderr = "";
    child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (!(await this.ping())) {
      if (child.exitCode !== null || Date.now() > deadline) {
        child.kill("SIGKILL");
        throw new Error(`redis-server did not start on port ${this.port}: ${stderr.trim() || `exit code ${child.exitCode}`}`);
      }
      await sleep(50);
    }
  }

  /** Stops redis-server (its data is gone: nothing is persisted) and waits for it to exit. */
  async stop(): Promise<void> {
    const child = this.process;
    this.process = undefined;
    if (child === undefined || child.exitCode !== null) return;
    const exited = once(child, "exit");
    child.kill("SIGTERM");
    await exited;
  }

  async close(): Promise<void> {
    await this.stop();
    await rm(this.dir, { recursive: true, force: true });
  }

  /** One inline command over a fresh connection; the reply's first line. */
  command(...words: string[]): Promise<string> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(this.port, "127.0.0.1");
      let reply = "";
      socket.setTimeout(2000, () => socket.destroy(new Error("redis-server did not answer")));
      socket.on("connect", () => socket.write(`${words.map(quote).join(" ")}\r\n`));
      socket.on("data", (chunk) => {
        reply += chunk.toString();
        if (reply.includes("\r\n")) {
          socket.end();
          resolve(reply.slice(0, reply.indexOf("\r\n")));
        }
      });
      socket.on("error", reject);
    });
  }

  private async ping(): Promise<boolean> {
    try {
      return (await this.command("PING")) === "+PONG";
    } catch {
      return false;
    }
  }
}

/** A word of an inline command, quoted when it must be. */
function quote(word: string): string {
  return /^[\w:.{}\-]+$/.test(word) ? word : `"${word.replace(/["\\]/g, (c) => `\\${c}`)}"`;
}
