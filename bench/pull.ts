/**
 * The pull part of `npm run bench` (issue 14), alone: `node --import tsx bench/pull.ts` (or BENCH_PULL_ONLY=1 npm run bench).
 *
 * A fake Hugging Face Hub and its CDN (test/helpers, in a process of their own) serve generated F32 llama GGUFs from
 * disk; ai-server runs in its own process (bench/served-app.ts), a fresh home per pull. Measured, alternating:
 * 1. throughput: `curl -L -o FILE` of the large file (BENCH_PULL_SIZE, default 2GiB) beside ai-server's
 *    `POST /api/pull` of it (request → `success`: resolve, header probe, download, verification, install);
 * 2. a per-connection rate limit on the CDN (BENCH_PULL_RATE, default 20MB a second, on BENCH_PULL_LIMITED_SIZE,
 *    default 512MiB: 8 parts of the default part size): ai-server with its parallel connections beside
 *    AI_SERVER_PULL_CONNECTIONS=1, and curl;
 * 3. the server's resident memory, sampled every 100 ms during the pulls of row 1.
 * BENCH_PULL_REPS (default 3) repetitions; BENCH_PULL_INTERNET=inline runs the fakes in the bench's process.
 * Files are cached in AI_SERVER_BENCH_DIR (default $TMPDIR/ai-server-bench); AI_SERVER_* settings apply to the server.
 */
import { mkdtemp, rm, statfs } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { loadConfig } from "../src/config/load.js";
import type { Config } from "../src/config/schema.js";
import { formatBytes, parseByteSize } from "../src/domain/byte-size.js";
import { cacheDir } from "./model.js";
import { ensureBenchGguf, ensureTinyGguf, type BenchGguf } from "./pull-files.js";
import { referenceMissing, timeCurl, type CurlRun } from "./pull-curl.js";
import { startPullInternet, type BenchRepoFile, type PullInternet } from "./pull-internet.js";
import { pullReport, type PullResults } from "./pull-report.js";
import { timeServerPull, type ServerPull } from "./pull-server.js";

export interface PullBenchOptions {
  /** Where the generated files are cached. */
  dir: string;
  reps: number;
  /** Bytes of the file of rows 1 and 3 (about: whole layers). */
  size: number;
  /** Bytes of the rate-limited file of row 2. */
  limitedSize: number;
  /** The CDN's cap per connection in row 2, bytes a second. */
  bytesPerSecond: number;
  /** Where the fake Hub and CDN run. */
  internet: "process" | "inline";
  log: (message: string) => void;
}

/** The options from BENCH_PULL_* variables. */
export function pullBenchOptions(env: NodeJS.ProcessEnv, log: (message: string) => void): PullBenchOptions {
  const reps = Number(env.BENCH_PULL_REPS);
  return {
    dir: cacheDir(env),
    reps: Number.isInteger(reps) && reps > 0 ? reps : 3,
    size: parseByteSize(env.BENCH_PULL_SIZE || "2GiB"),
    limitedSize: parseByteSize(env.BENCH_PULL_LIMITED_SIZE || "512MiB"),
    bytesPerSecond: parseByteSize(env.BENCH_PULL_RATE || "20MB"),
    internet: env.BENCH_PULL_INTERNET === "inline" ? "inline" : "process",
    log,
  };
}

/** Runs the three measurements; returns the markdown report. Never fails on timing. */
export async function pullBench(options: PullBenchOptions): Promise<string> {
  const { log, reps } = options;
  const missing = await referenceMissing();
  if (missing) return `## ai-server bench: pulling a model\n\nSkipped: ${missing}; the goals are set against curl (and it is verified with openssl).`;
  const config = loadConfig(process.env);
  const files = await generate(options);
  const internet = await startPullInternet([files.large, files.limited, files.tiny], options.internet);
  const scratch = await mkdtemp(path.join(os.tmpdir(), "ai-server-bench-curl-"));
  try {
    const settings = (connections: number): Record<string, string> => ({
      HF_ENDPOINT: internet.hubUrl,
      AI_SERVER_PULL_CONNECTIONS: String(connections),
      ...(!process.env.AI_SERVER_LOG_LEVEL && { AI_SERVER_LOG_LEVEL: "warn" }),
    });
    const curl = (file: BenchRepoFile): Promise<CurlRun> => timeCurl(internet.resolveUrl(file), path.join(scratch, "download.gguf"));
    const server = (file: BenchRepoFile, connections: number): Promise<ServerPull> =>
      timeServerPull(settings(connections), pullName(files.tiny), pullName(file), file.sha256);
    const cpuOf = async <T>(work: () => Promise<T>, into: number[]): Promise<T> => {
      const before = await internet.cpuMs();
      const result = await work();
      into.push((await internet.cpuMs()) - before);
      return result;
    };

    log(`pull: warm-up (curl of ${formatBytes(files.large.size)} to /dev/null: the file into the page cache)…`);
    await timeCurl(internet.resolveUrl(files.large), "/dev/null");
    const results: PullResults = {
      size: files.large.size,
      curl: [],
      server: [],
      cdnCpuMs: { curl: [], server: [] },
      limited: { size: files.limited.size, bytesPerSecond: options.bytesPerSecond, curl: [], parallel: [], single: [] },
      connections: config.pullConnections,
    };
    for (let rep = 0; rep < reps; rep++) {
      // Alternate which goes first, to spread drift and other load on the machine.
      const runs = [
        async () => results.curl.push(await cpuOf(() => curl(files.large), results.cdnCpuMs.curl)),
        async () => results.server.push(await cpuOf(() => server(files.large, config.pullConnections), results.cdnCpuMs.server)),
      ];
      for (const run of rep % 2 === 0 ? runs : runs.reverse()) await run();
      log(`pull rep ${rep + 1}/${reps}: curl ${seconds(results.curl.at(-1)!.ms)}, ai-server ${seconds(results.server.at(-1)!.totalMs)}`);
    }

    await internet.limitRate(files.limited.sha256, options.bytesPerSecond);
    const limited = results.limited;
    for (let rep = 0; rep < reps; rep++) {
      const runs = [
        async () => limited.parallel.push(await server(files.limited, config.pullConnections)),
        async () => limited.single.push(await server(files.limited, 1)),
        async () => limited.curl.push(await curl(files.limited)),
      ];
      for (const run of [...runs.slice(rep % 3), ...runs.slice(0, rep % 3)]) await run();
      log(`pull rate-limited rep ${rep + 1}/${reps}: ${config.pullConnections} connections ${seconds(limited.parallel.at(-1)!.totalMs)}, one ${seconds(limited.single.at(-1)!.totalMs)}, curl ${seconds(limited.curl.at(-1)!.ms)}`);
    }
    return [await header(options, files, internet, config), pullReport(results)].join("\n");
  } finally {
    await internet.close();
    await rm(scratch, { recursive: true, force: true });
  }
}

/** The bench's files: the large one, the rate-limited one, the warm-up one, each in a Hub repository of its own. */
async function generate(options: PullBenchOptions): Promise<{ large: BenchRepoFile; limited: BenchRepoFile; tiny: BenchRepoFile }> {
  const repoFile = (name: string, gguf: BenchGguf): BenchRepoFile => {
    if (gguf.generatedMs !== undefined) options.log(`generated ${gguf.path} (${formatBytes(gguf.size)}) in ${seconds(gguf.generatedMs)}`);
    return { repo: `bench/${name}-GGUF`, path: `${name}-F32.gguf`, file: gguf.path, sha256: gguf.sha256, size: gguf.size };
  };
  return {
    large: repoFile("pull-large", await ensureBenchGguf(options.dir, options.size)),
    limited: repoFile("pull-limited", await ensureBenchGguf(options.dir, options.limitedSize)),
    tiny: repoFile("pull-tiny", await ensureTinyGguf(options.dir)),
  };
}

/** The name the server pulls a repository file by (the tag names the file's quantization: it downloads whatever the memory budget). */
function pullName(file: BenchRepoFile): string {
  return `hf.co/${file.repo}:F32`;
}

async function header(options: PullBenchOptions, files: { large: BenchRepoFile; limited: BenchRepoFile }, internet: PullInternet, config: Config): Promise<string> {
  const cpus = os.cpus();
  const disk = await statfs(os.tmpdir());
  return [
    "## ai-server bench: pulling a model",
    "",
    `- machine: ${cpus[0]?.model ?? "unknown CPU"}, ${os.availableParallelism()} cores, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB RAM, ` +
      `${formatBytes(disk.bavail * disk.bsize)} free of ${formatBytes(disk.blocks * disk.bsize)} at ${os.tmpdir()}, ${process.platform} ${process.arch}, Node ${process.version}`,
    `- files: random-weight F32 llama GGUFs of ${formatBytes(files.large.size)} (${files.large.size} bytes) and ${formatBytes(files.limited.size)}, ` +
      `served from disk (page cache) by the fake Hub's CDN (test/helpers/fake-cdn.ts), ${internet.where === "process" ? "in a process of its own" : "in the bench's process"}; ` +
      "curl and the server follow the Hub's redirect to it; both write into the same filesystem",
    `- ai-server: its own process, a fresh home per pull, AI_SERVER_PULL_CONNECTIONS=${config.pullConnections}, part size ${formatBytes(config.pullPartSize)}; ` +
      "each pull follows an untimed pull of a tiny model on the same server (loads the llama.cpp runtime that sizes models)",
    `- ${options.reps} repetitions, alternating which goes first; cells: median (min–max); MB = 10^6 bytes`,
    "",
  ].join("\n");
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(2)} s`;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  console.log(await pullBench(pullBenchOptions(process.env, (message) => void process.stderr.write(`${message}\n`))));
}
