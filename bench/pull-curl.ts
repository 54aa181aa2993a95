import { spawn } from "node:child_process";
import { rm } from "node:fs/promises";

/** One download by curl, as the reference the server's pull is compared with. */
export interface CurlRun {
  /** Start of the process → its exit. */
  ms: number;
  /** `sync FILE` after it (fsync of the downloaded file; the server syncs what it downloads, curl does not). */
  syncMs: number;
  /** `openssl dgst -sha256 FILE` after that (the server verifies what it downloads, with OpenSSL's sha256 too; curl does not). */
  hashMs: number;
  /** curl's CPU time (user + system). */
  cpuMs: number;
}

/**
 * `curl -sS -f -L -o <out> <url>`: one connection, following the Hub's redirect to the CDN as the server does; then,
 * each timed on its own, `sync <out>` and `openssl dgst -sha256 <out>` (coreutils' sha256sum is several times slower
 * than OpenSSL, which Node's hashing uses); then the file is removed. `out` "/dev/null" skips them.
 */
export async function timeCurl(url: string, out: string): Promise<CurlRun> {
  const start = performance.now();
  // bash's `times` prints its own CPU time, then its children's: curl's.
  const printed = await run("bash", ["-c", 'curl -sS -f -L -o "$1" "$2" && times', "curl", out, url]);
  const ms = performance.now() - start;
  const children = printed.trim().split("\n").at(-1) ?? "";
  const seconds = [...children.matchAll(/(\d+)m([\d.]+)s/g)].map((m) => Number(m[1]) * 60 + Number(m[2]));
  const cpuMs = seconds.reduce((sum, s) => sum + s, 0) * 1000;
  if (out === "/dev/null") return { ms, syncMs: 0, hashMs: 0, cpuMs };
  try {
    const syncStart = performance.now();
    await run("sync", [out]);
    const hashStart = performance.now();
    await run("openssl", ["dgst", "-sha256", out]);
    return { ms, syncMs: hashStart - syncStart, hashMs: performance.now() - hashStart, cpuMs };
  } finally {
    await rm(out, { force: true });
  }
}

/** Why curl and openssl cannot be the reference here (one is not installed), or undefined when they can. */
export async function referenceMissing(): Promise<string | undefined> {
  for (const [command, args] of [["curl", ["--version"]], ["openssl", ["version"]]] as const) {
    try {
      await run(command, [...args]);
    } catch (error) {
      return `${command} does not run here (${error instanceof Error ? error.message : String(error)})`;
    }
  }
  return undefined;
}

/** Runs a command; resolves to its standard output, rejects with its standard error when it fails. */
function run(command: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => void (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => void (stderr += chunk.toString()));
    child.on("error", reject);
    child.on("close", (code) => (code === 0 ? resolve(stdout) : reject(new Error(`${command} exited with ${code}: ${stderr.trim()}`))));
  });
}
