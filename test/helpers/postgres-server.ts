import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { existsSync, readdirSync } from "node:fs";
import { chown, mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import { freePort } from "./free-port.js";

/** How long a starting postgres may take to accept connections. */
const START_TIMEOUT_MS = 30_000;
/** Where Debian puts PostgreSQL's server binaries (one directory per major version). */
const DEBIAN_ROOT = "/usr/lib/postgresql";

/** The directory of initdb and postgres (the newest version installed), or undefined. */
function binDir(): string | undefined {
  if (!existsSync(DEBIAN_ROOT)) return undefined;
  const versions = readdirSync(DEBIAN_ROOT).filter((v) => existsSync(path.join(DEBIAN_ROOT, v, "bin", "postgres")));
  const newest = versions.sort((a, b) => Number(b) - Number(a))[0];
  return newest === undefined ? undefined : path.join(DEBIAN_ROOT, newest, "bin");
}

/** Why the PostgreSQL tests cannot run here (no server binaries), or undefined when they can. */
export function postgresSkipReason(): string | undefined {
  if (process.env.AI_SERVER_TEST_DATABASE_URL) return undefined;
  return binDir() === undefined ? `PostgreSQL is not installed (no ${DEBIAN_ROOT}/*/bin/postgres; Debian: apt-get install postgresql; .ci/run installs it)` : undefined;
}

/** initdb and postgres refuse to run as root: then they run as the distribution's `postgres` user. */
function serverUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const uid = spawnSync("id", ["-u", "postgres"], { encoding: "utf8" });
  const gid = spawnSync("id", ["-g", "postgres"], { encoding: "utf8" });
  if (uid.status !== 0 || gid.status !== 0) throw new Error("running as root, and there is no postgres user to run PostgreSQL as");
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

/**
 * A real PostgreSQL (the distribution's binaries) in a temp directory, on a free loopback port, trusting local
 * connections, without fsync (tests need no durability across a power cut). Each test takes a fresh database of
 * its own (`createDatabase`). `stop` and `restart` keep the port and the data, so a test can take the database away
 * and bring it back; `close` stops the server and removes the directory.
 */
export class PostgresServer {
  private process: ChildProcess | undefined;
  private readonly killAtExit = (): void => void this.process?.kill("SIGKILL");

  private bin = "";
  private user: { uid: number; gid: number } | undefined;

  private constructor(
    readonly port: number,
    private readonly dir: string,
  ) {}

  /** postgres://postgres@127.0.0.1:<port>/<database> */
  url(database = "postgres"): string {
    return `postgres://postgres@127.0.0.1:${this.port}/${database}`;
  }

  static async start(): Promise<PostgresServer> {
    const bin = binDir();
    if (bin === undefined) throw new Error(postgresSkipReason());
    const dir = await mkdtemp(path.join(os.tmpdir(), "ai-server-postgres-"));
    const user = serverUser();
    if (user) await chown(dir, user.uid, user.gid);
    const server = new PostgresServer(await freePort(), dir);
    try {
      const init = spawnSync(path.join(bin, "initdb"), ["-D", path.join(dir, "data"), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C", "--no-sync"], {
        encoding: "utf8",
        ...user,
      });
      if (init.status !== 0) throw new Error(`initdb failed: ${init.stderr || init.stdout}`);
      server.bin = bin;
      server.user = user;
      await server.run();
    } catch (error) {
      await rm(dir, { recursive: true, force: true });
      throw error;
    }
    return server;
  }

  /** A new, empty database on this server; its URL. */
  async createDatabase(): Promise<string> {
    const name = `t_${randomBytes(6).toString("hex")}`;
    await this.query(`CREATE DATABASE ${name}`);
    return this.url(name);
  }

  /** Runs one statement on the `postgres` database, as the superuser. */
  async query(sql: string): Promise<void> {
    await adminQuery(this.url(), sql);
  }

  /** Stops the server (its data stays: `restart` brings it back on the same port). */
  async stop(): Promise<void> {
    const child = this.process;
    this.process = undefined;
    process.off("exit", this.killAtExit);
    if (child !== undefined && child.exitCode === null) {
      const exited = once(child, "exit");
      child.kill("SIGINT"); // fast shutdown: connections are ended, nothing waits
      await exited;
    }
  }

  /** Starts the stopped server again and waits until it accepts connections. */
  restart(): Promise<void> {
    return this.run();
  }

  async close(): Promise<void> {
    await this.stop();
    await rm(this.dir, { recursive: true, force: true });
  }

  private async run(): Promise<void> {
    const args = ["-D", path.join(this.dir, "data"), "-k", this.dir, "-p", String(this.port), "-c", "listen_addresses=127.0.0.1", "-F", "-c", "max_connections=300"];
    const child = spawn(path.join(this.bin, "postgres"), args, { stdio: ["ignore", "ignore", "pipe"], ...this.user });
    this.process = child;
    process.on("exit", this.killAtExit);
    let stderr = "";
    child.stderr!.on("data", (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      try {
        await adminQuery(this.url(), "SELECT 1");
        return;
      } catch {
        if (child.exitCode !== null || Date.now() > deadline) {
          child.kill("SIGKILL");
          throw new Error(`postgres did not start on port ${this.port}: ${stderr.trim() || `exit code ${child.exitCode}`}`);
        }
        await sleep(100);
      }
    }
  }
}

/** One statement over a fresh connection. */
export async function adminQuery(url: string, sql: string): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  client.on("error", () => undefined);
  await client.connect();
  try {
    return await client.query(sql);
  } finally {
    await client.end();
  }
}

/** The server's URL with another database name. */
function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

/**
 * A fresh database for one test server: on the PostgreSQL that AI_SERVER_TEST_DATABASE_URL names (the suite run by
 * `npm run test:postgres`), created through that URL. `drop` removes it (its connections ended first).
 */
export async function freshSuiteDatabase(serverUrl: string): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `t_${randomBytes(6).toString("hex")}`;
  await adminQuery(serverUrl, `CREATE DATABASE ${name}`);
  return {
    url: withDatabase(serverUrl, name),
    drop: () => adminQuery(serverUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).then(() => undefined),
  };
}
