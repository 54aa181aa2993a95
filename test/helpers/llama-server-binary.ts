import { execFileSync } from "node:child_process";
import path from "node:path";

/** The llama-server binary, built by scripts/build-llama-server.mjs when it is not there yet (about 2 minutes once). */
export function buildLlamaServer(): string {
  const script = path.join(import.meta.dirname, "..", "..", "scripts", "build-llama-server.mjs");
  return execFileSync(process.execPath, [script], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] }).trim().split("\n").at(-1) ?? "";
}
