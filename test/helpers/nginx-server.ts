import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { freePort } from "./free-port.js";

/** Debian's nginx (the nginx package). */
const NGINX = "/usr/sbin/nginx";
/** The deployment's nginx configuration, which the README shows and docker-compose.yml mounts. */
export const DEPLOY_NGINX_CONF = fileURLToPath(new URL("../../deploy/nginx.conf", import.meta.url));
/** How long a starting nginx may take to accept connections. */
const START_TIMEOUT_MS = 10_000;

/** Why the nginx tests cannot run here (no nginx binary), or undefined when they can. */
export function nginxSkipReason(): string | undefined {
  return existsSync(NGINX) ? undefined : `${NGINX} is not installed (Debian: apt-get install nginx-light or nginx; .ci/run installs it)`;
}

/** One access log line: the request's id, the replica addresses tried in order, the status, the session header. */
export interface AccessLogEntry {
  requestId: string;
  /** e.g. ["127.0.0.1:40001"], or ["127.0.0.1:40001", "127.0.0.1:40002"] when the first failed and the next answered. */
  upstreams: string[];
  status: number;
  session: string;
}

/**
 * `deploy/nginx.conf` for a test: the same text with the listen address and the replicas' addresses replaced, and
 * nothing else (each replaced text must occur exactly once, so a change of the file's shape fails the test instead of
 * testing something else).
 */
export function siteForTest(text: string, listen: string, replicas: Record<string, string>): string {
  const replace = (from: string, to: string): void => {
    const count = text.split(from).length - 1;
    if (count !== 1) throw new Error(`deploy/nginx.conf: expected "${from}" once, found it ${count} times`);
    text = text.replace(from, to);
  };
  replace("listen 80;", `listen ${listen};`);
  for (const [from, to] of Object.entries(replicas)) replace(`server ${from} `, `server ${to} `);
  return text;
}

/**
 * A real nginx (the distribution's binary) in a temp directory, serving `deploy/nginx.conf` (siteForTest) inside a
 * minimal main configuration of the test's own: its pid, logs and temp files under the directory, an access log that
 * records which replicas each request was sent to ($upstream_addr), and, run as root, workers that stay root (the
 * directory is private). `close` stops it and removes the directory.
 */
export class NginxServer {
  private constructor(
    private readonly child: ChildProcess,
    private readonly dir: string,
    readonly port: number,
  ) {}

  /** http://127.0.0.1:<port> */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Starts nginx with the deployment file, each replica name (`ai-1:11434`) sent to its test address (`127.0.0.1:p`). */
  static async start(replicas: Record<string, string>): Promise<NginxServer> {
    const dir = await mkdtemp(path.join(os.tmpdir(), "ai-server-nginx-"));
    const port = await freePort();
    const site = siteForTest(await readFile(DEPLOY_NGINX_CONF, "utf8"), `127.0.0.1:${port}`, replicas);
    await writeFile(path.join(dir, "ai-server.conf"), site);
    await writeFile(path.join(dir, "nginx.conf"), mainConfig(dir));
    const child = spawn(NGINX, ["-p", dir, "-c", path.join(dir, "nginx.conf")], { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const server = new NginxServer(child, dir, port);
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (!(await accepts(port))) {
      if (child.exitCode !== null || Date.now() > deadline) {
        child.kill("SIGKILL");
        const log = await readFile(path.join(dir, "error.log"), "utf8").catch(() => "");
        await rm(dir, { recursive: true, force: true });
        throw new Error(`nginx did not start on port ${port}: ${stderr.trim() || log.trim() || `exit code ${child.exitCode}`}`);
      }
      await sleep(50);
    }
    return server;
  }

  /** The access log so far, parsed. */
  async accessLog(): Promise<AccessLogEntry[]> {
    const text = await readFile(path.join(this.dir, "access.log"), "utf8").catch(() => "");
    return text
      .split("\n")
      .filter((line) => line !== "")
      .map((line) => {
        const [requestId = "", upstreams = "", status = "0", session = ""] = line.split("\t");
        return { requestId, upstreams: upstreams.split(/,\s*/).filter((u) => u !== "" && u !== "-"), status: Number(status), session };
      });
  }

  async close(): Promise<void> {
    if (this.child.exitCode === null) {
      const exited = once(this.child, "exit");
      this.child.kill("SIGTERM");
      await exited;
    }
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** The test's main configuration: one worker in the foreground, everything under `dir`, then the site. */
function mainConfig(dir: string): string {
  const at = (name: string): string => path.join(dir, name);
  return [
    "daemon off;",
    "worker_processes 1;",
    ...(process.getuid?.() === 0 ? ["user root;"] : []),
    `pid ${at("nginx.pid")};`,
    `error_log ${at("error.log")} warn;`,
    "events { worker_connections 1024; }",
    "http {",
    "  log_format replicas '$request_id\\t$upstream_addr\\t$status\\t$http_x_session_id';",
    `  access_log ${at("access.log")} replicas;`,
    ...["client_body", "proxy", "fastcgi", "uwsgi", "scgi"].map((kind) => `  ${kind}_temp_path ${at(kind)};`),
    `  include ${at("ai-server.conf")};`,
    "}",
    "",
  ].join("\n");
}

/** Whether something accepts TCP connections on 127.0.0.1:port. */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}
