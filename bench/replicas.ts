/**
 * Replicas behind nginx (issue 20's benchmark): aggregate decode throughput of N concurrent streams on
 *   1. one replica, called directly;
 *   2. the same replica behind nginx running deploy/nginx.conf (both upstream entries pointing at it);
 *   3. two replicas behind nginx (requests without a session, spread by nginx's hash of the request id).
 * `node --import tsx bench/replicas.ts`, or BENCH_REPLICAS_ONLY=1 npm run bench (BENCH_REPLICAS=0 skips it there).
 *
 * Each replica is ai-server in a process of its own (bench/served-app.ts) with the bench model (BENCH_MODEL,
 * bench/model.ts), one thread (BENCH_REPLICAS_THREADS) and N slots; nginx is Debian's, started as the tests start it
 * (test/helpers/nginx-server.ts; the part is skipped, saying so, without it). Each of the N clients sends
 * BENCH_REPLICAS_REQUESTS /v1/completions of BENCH_REPLICAS_TOKENS tokens back to back; throughput is every completion
 * token over the wall time, the median of BENCH_REPLICAS_REPS runs. On one machine the replicas share its cores, so
 * 3 beside 1 shows what a second replica adds here (and costs), not how replicas scale on machines of their own;
 * 2 beside 1 is nginx's own cost.
 */
import os from "node:os";
import { pathToFileURL } from "node:url";
import { loadConfig } from "../src/config/load.js";
import type { Config } from "../src/config/schema.js";
import { NginxServer, nginxSkipReason } from "../test/helpers/nginx-server.js";
import { cacheDir, ensureModel, modelShape, parameterCount } from "./model.js";
import { spawnApp, type SpawnedApp } from "./served-app.js";

const CONTEXT = 512;
const REPLICA_HEADER = "x-ai-server-replica";

export interface ReplicasBenchOptions {
  config: Config;
  dir: string;
  streams: number;
  requests: number;
  tokens: number;
  reps: number;
  threads: number;
  log: (message: string) => void;
}

export function replicasBenchOptions(env: NodeJS.ProcessEnv, log: (message: string) => void): ReplicasBenchOptions {
  const config = loadConfig(env, { ...(!env.AI_SERVER_LOG_LEVEL && { logLevel: "warn" }) });
  return {
    config,
    dir: cacheDir(env),
    streams: positiveInt(env.BENCH_REPLICAS_STREAMS, 4),
    requests: positiveInt(env.BENCH_REPLICAS_REQUESTS, 4),
    tokens: positiveInt(env.BENCH_REPLICAS_TOKENS, 64),
    reps: positiveInt(env.BENCH_REPLICAS_REPS, 3),
    threads: positiveInt(env.BENCH_REPLICAS_THREADS, 1),
    log,
  };
}

/** One run: completion tokens per second over the wall time, and how many requests each replica served. */
interface Run {
  tps: number;
  served: Record<string, number>;
}

export async function replicasBench(options: ReplicasBenchOptions): Promise<string> {
  const skip = nginxSkipReason();
  if (skip !== undefined) return `## Replicas behind nginx\n\nskipped: ${skip}\n`;
  const { config, log } = options;
  const shape = modelShape();
  const model = await ensureModel(options.dir, shape);
  const replica = (name: string): Promise<SpawnedApp> =>
    spawnApp(
      {
        AI_SERVER_ENGINE: config.engine,
        AI_SERVER_THREADS: String(options.threads),
        AI_SERVER_GPU: config.gpu,
        AI_SERVER_LOG_LEVEL: config.logLevel,
        AI_SERVER_NUM_PARALLEL: String(options.streams),
        AI_SERVER_CONTEXT_LENGTH: String(CONTEXT),
        AI_SERVER_KEEP_ALIVE: "-1",
        AI_SERVER_REPLICA_NAME: name,
        ...(config.llamaServer !== "" && { AI_SERVER_LLAMA_SERVER: config.llamaServer }),
      },
      async (store) => {
        await store.create({ name: "bench", modelDigest: (await store.blobs.importFile(model.path)).digest });
      },
    );
  const apps: SpawnedApp[] = [];
  const proxies: NginxServer[] = [];
  try {
    const [one, two] = [await replica("ai-1"), await replica("ai-2")];
    apps.push(one, two);
    const at = (app: SpawnedApp): string => `127.0.0.1:${app.port}`;
    const alone = await NginxServer.start({ "ai-1:11434": at(one), "ai-2:11434": at(one) });
    const both = await NginxServer.start({ "ai-1:11434": at(one), "ai-2:11434": at(two) });
    proxies.push(alone, both);
    const targets = [
      { label: "1 replica, direct", url: `http://${at(one)}` },
      { label: "1 replica behind nginx", url: alone.url },
      { label: "2 replicas behind nginx", url: both.url },
    ];
    log(`replicas: warm-up (each replica loads the model)…`);
    for (const app of [one, two]) await completions(`http://${at(app)}`, 1, 1, options.tokens);
    const ps = (await (await fetch(`http://${at(one)}/api/ps`)).json()) as { models?: Array<{ engine?: string }> };
    const load = [os.loadavg()[0] ?? 0];
    const runs = new Map<string, Run[]>(targets.map((t) => [t.label, []]));
    for (let rep = 0; rep < options.reps; rep++) {
      for (const target of rep % 2 === 0 ? targets : [...targets].reverse()) {
        const run = await completions(target.url, options.streams, options.requests, options.tokens);
        runs.get(target.label)!.push(run);
        log(`replicas: rep ${rep + 1}/${options.reps}, ${target.label}: ${run.tps.toFixed(1)} tok/s ${JSON.stringify(run.served)}`);
      }
    }
    load.push(os.loadavg()[0] ?? 0);
    const base = median(runs.get(targets[0]!.label)!.map((r) => r.tps));
    const rows = targets.map(({ label }) => {
      const list = runs.get(label)!;
      const tps = list.map((r) => r.tps);
      const served = list.reduce<Record<string, number>>((sum, r) => {
        for (const [name, n] of Object.entries(r.served)) sum[name] = (sum[name] ?? 0) + n;
        return sum;
      }, {});
      const spread = Object.entries(served).sort().map(([name, n]) => `${name} ${n}`).join(", ");
      return `| ${label} | ${median(tps).toFixed(1)} (${Math.min(...tps).toFixed(1)}–${Math.max(...tps).toFixed(1)}) | ${(median(tps) / base).toFixed(2)}× | ${spread} |`;
    });
    const cpus = os.cpus();
    return [
      "## Replicas behind nginx",
      "",
      `- machine: ${cpus[0]?.model ?? "unknown CPU"}, ${os.availableParallelism()} cores (shared by every replica, nginx and the clients; load average ${load.map((l) => l.toFixed(1)).join(" → ")}); engine ${ps.models?.[0]?.engine ?? config.engine}`,
      `- model: ${shape.name} (${(parameterCount(shape) / 1e6).toFixed(0)}M, ${shape.type}); each replica ${options.threads} thread(s), ${options.streams} slots of ${CONTEXT} tokens`,
      `- workload: ${options.streams} clients, each ${options.requests} /v1/completions of ${options.tokens} tokens back to back; median (min–max) of ${options.reps} runs`,
      "",
      "| setup | tokens/s | vs direct | requests served |",
      "| --- | --- | --- | --- |",
      ...rows,
      "",
    ].join("\n");
  } finally {
    await Promise.all(proxies.map((p) => p.close()));
    await Promise.all(apps.map((a) => a.close()));
  }
}

/** `streams` clients each sending `requests` completions of `tokens` tokens in a row: the aggregate rate. */
async function completions(baseUrl: string, streams: number, requests: number, tokens: number): Promise<Run> {
  const served: Record<string, number> = {};
  let total = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: streams }, async (_, client) => {
      for (let i = 0; i < requests; i++) {
        const response = await fetch(`${baseUrl}/v1/completions`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ model: "bench", prompt: `Client ${client}, request ${i}: once upon a time`, max_tokens: tokens, temperature: 0 }),
        });
        if (response.status !== 200) throw new Error(`${baseUrl}: ${response.status} ${await response.text()}`);
        const body = (await response.json()) as { usage?: { completion_tokens?: number } };
        total += body.usage?.completion_tokens ?? 0;
        const name = response.headers.get(REPLICA_HEADER) ?? "?";
        served[name] = (served[name] ?? 0) + 1;
      }
    }),
  );
  return { tps: total / ((performance.now() - start) / 1000), served };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function positiveInt(value: string | undefined, fallback: number): number {
  const n = Number(value);
  return value && Number.isInteger(n) && n > 0 ? n : fallback;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  console.log(await replicasBench(replicasBenchOptions(process.env, (message) => void process.stderr.write(`${message}\n`))));
}
