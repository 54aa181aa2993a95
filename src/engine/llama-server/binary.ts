import { execFile } from "node:child_process";
import { access, constants, readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const run = promisify(execFile);

/** The build script, from src/engine/llama-server/ and dist/engine/llama-server/ alike. */
const BUILD_SCRIPT = fileURLToPath(new URL("../../../scripts/build-llama-server.mjs", import.meta.url));

/**
 * The llama-server binary to use: `configured` when set, else the finished build that
 * `scripts/build-llama-server.mjs --no-build` finds in its cache (this never builds). Throws an Error that says
 * plainly what is missing and how to get it.
 */
export async function findLlamaServer(configured: string): Promise<string> {
  if (configured !== "") {
    await access(configured, constants.X_OK).catch(() => {
      throw new Error(`the llama-server binary ${configured} (AI_SERVER_LLAMA_SERVER) does not exist or is not executable`);
    });
    return configured;
  }
  try {
    const { stdout } = await run(process.execPath, [BUILD_SCRIPT, "--no-build"], { timeout: 30_000 });
    const found = stdout.trim().split("\n").at(-1);
    if (found) return found;
  } catch {
    // no finished build (or no script): said below
  }
  throw new Error("no llama-server binary: build it with `node scripts/build-llama-server.mjs` (about 2 minutes), or set AI_SERVER_LLAMA_SERVER");
}

/**
 * llama.cpp's quantize tool: `configured` (AI_SERVER_LLAMA_QUANTIZE) when set, else the `llama-quantize` beside the
 * llama-server that findLlamaServer finds (the build script makes both). Throws an Error that says plainly what is
 * missing and how to get it.
 */
export async function findLlamaQuantize(configured: string, llamaServer: string): Promise<string> {
  if (configured !== "") {
    await access(configured, constants.X_OK).catch(() => {
      throw new Error(`the quantize tool ${configured} (AI_SERVER_LLAMA_QUANTIZE) does not exist or is not executable`);
    });
    return configured;
  }
  const server = await findLlamaServer(llamaServer).catch(() => {
    throw new Error("no llama-quantize binary: build it with `node scripts/build-llama-server.mjs`, or set AI_SERVER_LLAMA_QUANTIZE");
  });
  const beside = path.join(path.dirname(server), "llama-quantize");
  await access(beside, constants.X_OK).catch(() => {
    throw new Error(`there is no llama-quantize beside ${server}: \`node scripts/build-llama-server.mjs\` adds it to its build, or set AI_SERVER_LLAMA_QUANTIZE`);
  });
  return beside;
}

/** Runs `binary --version` (its shared libraries must load); returns the version line, or throws a plain Error. */
export async function checkLlamaServer(binary: string): Promise<string> {
  try {
    const { stdout, stderr } = await run(binary, ["--version"], { timeout: 30_000 });
    const version = `${stdout}${stderr}`.split("\n").find((line) => /version/i.test(line));
    if (version) return version.trim();
    throw new Error("it printed no version");
  } catch (error) {
    const detail = error instanceof Error ? error.message.trim().split("\n").slice(0, 3).join(" / ") : String(error);
    throw new Error(`the llama-server binary ${binary} does not run: ${detail}`);
  }
}

/**
 * The node-llama-cpp prebuilt variant a build of scripts/build-llama-server.mjs links against ("linux-x64" is CPU
 * only; "linux-x64-cuda", "linux-x64-vulkan" carry a GPU backend), from the build-info.json beside it; undefined for
 * a binary from elsewhere.
 */
export async function buildVariant(binary: string): Promise<string | undefined> {
  try {
    const info = JSON.parse(await readFile(path.join(path.dirname(binary), "build-info.json"), "utf8")) as { method?: string; variant?: string };
    return info.method === "cmake" ? "cmake" : info.variant;
  } catch {
    return undefined;
  }
}
