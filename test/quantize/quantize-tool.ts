import { accessSync, constants, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { buildLlamaServer } from "../helpers/llama-server-binary.js";

/**
 * llama.cpp's quantize tool as scripts/build-llama-server.mjs builds it beside llama-server (building or completing
 * the build when needed: seconds when llama-server is built, ~2 minutes when not), or why there is none: tests that
 * need it skip with that reason.
 */
export function quantizeTool(): { binary: string; skip?: undefined } | { binary?: undefined; skip: string } {
  let server: string;
  try {
    server = buildLlamaServer();
  } catch (error) {
    return { skip: `llama.cpp's tools could not be built here (${error instanceof Error ? error.message.split("\n")[0] : String(error)})` };
  }
  const binary = path.join(path.dirname(server), "llama-quantize");
  try {
    accessSync(binary, constants.X_OK);
    return { binary };
  } catch {
    return { skip: `the build script finished but made no ${binary}` };
  }
}

/** The pids of running llama-quantize processes whose parent is this process (the server runs in it). */
export function quantizeChildren(): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      // pid (comm) state ppid …; comm may hold spaces, so split after its closing parenthesis
      const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const [state, ppid] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (comm === "llama-quantize" && Number(ppid) === process.pid && state !== "Z") pids.push(Number(entry));
    } catch {
      // the process ended meanwhile
    }
  }
  return pids;
}
