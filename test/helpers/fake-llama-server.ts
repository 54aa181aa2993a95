import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";

/**
 * How the stand-in behaves once started: "crash-after-health" answers GET /health with 200, then, 200 ms later,
 * writes a line to stderr and dies by SIGABRT, as a llama-server that crashes right after every load would;
 * "never-healthy" begins its /health answer and never ends it (a byte now and then, so that only a bound on the
 * whole answer ends the wait), and never answers anything else: a process wedged while it loads.
 */
export type FakeLlamaServerMode = "crash-after-health" | "never-healthy";

export interface FakeLlamaServer {
  /** The executable (AI_SERVER_LLAMA_SERVER, or LlamaServerEngine's `binary`). */
  binary: string;
  /** Pids of every process started from it, in order. */
  starts(): Promise<number[]>;
  remove(): Promise<void>;
}

/**
 * A stand-in for llama-server, for the crash tests only: a real crash of llama.cpp at every load cannot be made on
 * demand here. A small Node.js script that speaks just enough of llama-server's command line (`--version`,
 * `--host <socket>`) and HTTP API (GET /health) on its UNIX socket; every other request is held open, never answered.
 */
export async function writeFakeLlamaServer(mode: FakeLlamaServerMode): Promise<FakeLlamaServer> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "ai-server-fake-llama-"));
  const binary = path.join(dir, "llama-server.cjs");
  const startsFile = path.join(dir, "starts");
  const script = `#!${process.execPath}
const fs = require("node:fs");
const http = require("node:http");
const args = process.argv.slice(2);
if (args.includes("--version")) {
  console.log("version: 0 (fake llama-server for tests)");
  process.exit(0);
}
fs.appendFileSync(${JSON.stringify(startsFile)}, process.pid + "\\n");
console.error("fake llama-server: loading");
const mode = ${JSON.stringify(mode)};
let crashing = false;
http
  .createServer((request, response) => {
    if (request.url !== "/health") return; // held open
    if (mode === "never-healthy") {
      response.writeHead(200, { "content-type": "application/json" });
      setInterval(() => response.write(" "), 300);
      return;
    }
    response.end('{"status":"ok"}');
    if (mode !== "crash-after-health" || crashing) return;
    crashing = true;
    setTimeout(() => {
      console.error("fake llama-server: out of memory");
      process.kill(process.pid, "SIGKILL");
    }, 200);
  })
  .listen(args[args.indexOf("--host") + 1]);
`;
  await writeFile(binary, script);
  await chmod(binary, 0o755);
  return {
    binary,
    async starts() {
      const text = await readFile(startsFile, "utf8").catch(() => "");
      return text.split("\n").filter((line) => line !== "").map(Number);
    },
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}
