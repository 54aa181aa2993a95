import os from "node:os";
import path from "node:path";
import type { FastifyInstance } from "fastify";
import type { Config } from "./config/schema.js";
import type { Engine } from "./engine/engine.js";
import { LlamaCppEngine } from "./engine/llama-cpp/llama-cpp-engine.js";
import { buildVariant, checkLlamaServer, findLlamaServer } from "./engine/llama-server/binary.js";
import { LlamaServerEngine } from "./engine/llama-server/llama-server-engine.js";
import { ProcessRegistry } from "./engine/llama-server/process-registry.js";
import { EngineRouter } from "./engine/engine-router.js";
import { UpstreamEngine } from "./engine/upstream/upstream-engine.js";
import { upstreamSecret } from "./config/upstream-secret.js";
import { UpstreamMetrics } from "./server/upstream-metrics.js";
import { ModelAliases } from "./scheduler/aliases.js";
import { Preloader } from "./scheduler/preload.js";
import { Scheduler } from "./scheduler/scheduler.js";
import { AuditLog } from "./audit/audit-log.js";
import { openKeys } from "./auth/keys-at-start.js";
import { createHttpServer } from "./server/http.js";
import { limitCounterFor } from "./limits/limit-counter-for.js";
import { Metrics } from "./server/metrics.js";
import { dataPaths, openModelStore } from "./store/open-store.js";
import { ResponseStore } from "./store/response-store.js";
import { SharedState } from "./store/sql/shared-state.js";
import { quantizerFor } from "./quantize/quantizer-for.js";
import { Jobs } from "./jobs/jobs.js";
import { JobStore } from "./jobs/job-store.js";
import { Downloader } from "./pull/download/downloader.js";
import type { PullPlan } from "./pull/pull-plan.js";
import { pullWork } from "./pull/pull-work.js";
import { weightsFetcherFor } from "./replicas/weights-for.js";
import type { Services } from "./services.js";

/** How often stored responses past AI_SERVER_RESPONSES_RETENTION are removed (reads never serve them meanwhile). */
const RESPONSES_PRUNE_INTERVAL_MS = 60 * 60 * 1000;
/** How often audit rows past AI_SERVER_AUDIT_RETENTION are removed. */
const AUDIT_PRUNE_INTERVAL_MS = 60 * 60 * 1000;

export interface App {
  http: FastifyInstance;
  services: Services;
  /**
   * Graceful shutdown: refuses new requests (503), lets those in progress finish within AI_SERVER_SHUTDOWN_TIMEOUT
   * and then stops them with an error, stops running pulls (resumable), unloads every model, closes the database.
   */
  close(): Promise<void>;
}

/** The composition root: builds every service and the HTTP server, without listening. */
export async function buildApp(config: Config, overrides: { engine?: Engine } = {}): Promise<App> {
  // What the engines and the database have to say goes to the server's log, held back until the log exists.
  const pending: Notice[] = [];
  let notify = (notice: Notice): void => void pending.push(notice);
  // The state (SQLite under the home, or AI_SERVER_DATABASE_URL's PostgreSQL shared by the replicas)
  const { store, db, close: closeStore } = await openModelStore(config.home, { databaseUrl: config.databaseUrl, warn: (message) => notify({ level: "warn", message }) });
  // Models served by remote endpoints (`upstream` on /api/create) get the upstream engine (made below, with its metrics).
  const engine = overrides.engine ?? (await createEngine(config, (notice) => notify(notice), () => Promise.resolve(upstream)));
  // Read when scraped (the scheduler and the jobs exist by then); told of loads, crashes and downloaded bytes.
  const metrics: Metrics = new Metrics({
    models: () => scheduler.running().map((m) => ({ name: m.record.name, active: m.active, queued: m.queued, ram: m.ram, vram: m.vram, stats: m.stats })),
    requests: () => scheduler.requests(),
    jobs: () => jobs.countByState(),
    refresh: () => scheduler.refreshStats(),
  });
  const upstream = new UpstreamEngine({
    connectTimeoutMs: config.upstreamConnectTimeoutMs,
    firstByteTimeoutMs: config.upstreamFirstByteTimeoutMs,
    cooldownMs: config.upstreamCooldownMs,
    healthIntervalMs: config.upstreamHealthIntervalMs,
    secret: upstreamSecret,
    events: new UpstreamMetrics(metrics.registry),
    warn: (message) => notify({ level: "warn", message }),
  });
  const scheduler: Scheduler = new Scheduler(engine, (digest) => store.modelPath(digest), {
    defaultContextSize: config.contextLength,
    defaultKeepAliveMs: config.keepAliveMs,
    slotsPerModel: config.numParallel === "auto" ? 0 : config.numParallel, // 0: chosen per model from memory
    threads: config.threads,
    upstreamSlots: config.upstreamMaxParallel,
    maxQueue: config.maxQueue,
    maxLoadedModels: config.maxLoadedModels,
    memory: { budget: { ram: config.memoryBudgetBytes, vram: config.vramBudgetBytes }, headroom: config.memoryHeadroomBytes },
    loadCooldownMs: config.loadCooldownMs,
    requestTimeoutMs: config.requestTimeoutMs,
    isReferenced: (modelDigest) => store.references(modelDigest),
    latest: (name) => store.get(name),
    // Weights this replica lacks (a model created on another one) are fetched before the load: a peer, else the source.
    ensureWeights: (record, signal) => weights.ensure(record, signal),
    // Metrics count the scheduler's events; a crash also goes to the log with its reason.
    events: {
      modelLoaded: (model, seconds) => metrics.modelLoaded(model, seconds),
      modelLoadFailed: (model) => metrics.modelLoadFailed(model),
      engineCrashed: (model, reason) => {
        metrics.engineCrashed(model);
        notify({ level: "warn", message: `model ${model} crashed: ${reason}` });
      },
    },
  });
  // A model re-created with other weights, or deleted, leaves weights no name refers to: the scheduler unloads
  // them as soon as they are idle (hot swap).
  store.onChange(() => scheduler.dropStale());
  const aliases = new ModelAliases(config.aliases);
  aliases.install(store);
  const preload = new Preloader(scheduler, (name) => store.require(name), config.preload);
  const quantizer = quantizerFor(config, store, db);
  const paths = dataPaths(config.home);
  const downloader = new Downloader(paths.downloads, {
    connections: config.pullConnections,
    partSize: config.pullPartSize,
    stallTimeoutMs: config.pullStallTimeoutMs,
  });
  const jobStore = new JobStore<PullPlan>(db);
  const jobs = new Jobs<PullPlan>(jobStore, pullWork(config, scheduler, { store, downloader, quantizer }, paths.probes), {
    maxRunning: config.maxDownloads,
    // A server started again on this host and home takes its unfinished pulls back at once; other replicas wait for
    // their claims to lapse.
    owner: `${os.hostname()}:${path.resolve(config.home)}`,
    leaseMs: config.jobLeaseMs,
    log: (message) => notify({ level: "info", message }),
    downloaded: (bytes) => metrics.pullDownloaded(bytes),
  });
  // Fetches the weights a model needs that are not here, verified: from a peer replica (AI_SERVER_PEERS), else again
  // from the source its finished pull job recorded; progress goes to the log.
  const weights = weightsFetcherFor(config, { store, downloader, pulls: () => jobStore.list(), log: (level, message) => notify({ level, message }) });
  // Stored responses (/v1/responses) past their retention are never served; they are also removed, now and hourly.
  const responses = new ResponseStore(db, { retentionMs: config.responsesRetentionMs });
  const warnOf = (what: string) => (error: unknown) => notify({ level: "warn", message: `${what}: ${error instanceof Error ? error.message : String(error)}` });
  await responses.prune();
  const pruneResponses = setInterval(() => void responses.prune().catch(warnOf("pruning stored responses failed")), RESPONSES_PRUNE_INTERVAL_MS);
  pruneResponses.unref();
  const keys = await openKeys(db, config, (notice) => notify(notice));
  // The audit log: rows written in batches whose commits do not wait for the disk (lazy transactions), pruned past
  // their retention now and hourly.
  const audit = new AuditLog(db, {
    retentionMs: config.auditRetentionMs,
    onError: (error, rows) => notify({ level: "warn", message: `audit log: ${rows} row(s) could not be written: ${error instanceof Error ? error.message : String(error)}` }),
  });
  await audit.prune();
  const pruneAudit = setInterval(() => void audit.prune().catch(warnOf("pruning the audit log failed")), AUDIT_PRUNE_INTERVAL_MS);
  pruneAudit.unref();
  const limits = await limitCounterFor(config, { warn: (message) => notify({ level: "warn", message }), failed: () => metrics.rateLimitStoreFailed() });
  // Other replicas' writes to the models and keys are also read between requests (PostgreSQL's notifications).
  const stopListening = await SharedState.of(db).listen((message) => notify({ level: "warn", message }));
  const services: Services = { config, store, scheduler, preload, aliases, metrics, engine: engine.name, quantizer, jobs, responses, keys, audit, limits: limits.counter, database: db };
  const http = await createHttpServer(services);
  notify = (notice) => http.log[notice.level](notice.message);
  pending.forEach(notify);
  await jobs.resume(); // pulls a previous run left unfinished (even killed), or a replica that died, go on where they stopped
  void preload.start(); // in the background: GET /health reports "loading" until it is done
  return {
    http,
    services,
    async close() {
      // New requests are refused from now on; those in progress may finish within the grace period, then they are
      // stopped with an error and their connections dropped (server/shutdown.ts), so this always ends.
      http.shutdown.begin(config.shutdownTimeoutMs);
      quantizer.close();
      // Running pulls stop at once and stay resumable (their progress streams end, saying so).
      await Promise.all([http.close(), jobs.close(), weights.close()]);
      http.shutdown.end();
      await limits.close(); // after the last request's release
      await downloader.close();
      await preload.close();
      await scheduler.close();
      clearInterval(pruneResponses);
      clearInterval(pruneAudit);
      await audit.close(); // the last rows: those of the requests that just ended
      await stopListening();
      await closeStore();
    },
  };
}

/**
 * The engines, behind one router: AI_SERVER_ENGINE picks the default and a model's `engine` parameter can name the
 * other. llama-server needs its binary (AI_SERVER_LLAMA_SERVER, else the build script's cache, which `npm ci`
 * fills) to run; when it is missing or does not, the server says why and serves with the in-process engine instead
 * of not starting. "auto" (the default, measured: llama-server decodes 1.1–1.45× faster on one stream and 1.7–2.6×
 * with 4–8 streams on CPU, see README) prefers llama-server, except where the in-process engine has a GPU backend
 * that the llama-server build lacks. llama-server models are estimated by the in-process engine's GGUF insights
 * (nothing is loaded).
 */
async function createEngine(config: Config, notify: (notice: Notice) => void, upstream: () => Promise<Engine>): Promise<Engine> {
  const inProcess = new LlamaCppEngine({ gpu: config.gpu });
  let gpu: LlamaGpuName | false = false;
  if (config.gpu !== "off") {
    // At start-up, so that a GPU that cannot be used is said plainly now, not at the first request.
    const found = await inProcess.gpu();
    gpu = found.backend;
    notify({ level: "info", message: gpu === false ? "GPU: none usable; models run on the CPU" : `GPU: ${gpu} (${found.devices.join(", ") || "no device names"})` });
    for (const note of inProcess.gpuNotes) notify({ level: "warn", message: note });
  }
  const locateLlamaServer = async (): Promise<{ binary: string; version: string }> => {
    const binary = await findLlamaServer(config.llamaServer);
    return { binary, version: await checkLlamaServer(binary) };
  };
  // Whatever the default engine: llama-server processes that an earlier server (killed) left running keep their
  // memory until they are stopped, even when this one might never open the llama-server engine.
  const stateDir = path.join(config.home, "run", "llama-server");
  const reaped = await new ProcessRegistry(stateDir).reap();
  if (reaped.length > 0) notify({ level: "warn", message: `stopped ${reaped.length} llama-server process(es) left running by an earlier server (pids ${reaped.join(", ")})` });
  const llamaServerAt = (binary: string): LlamaServerEngine => new LlamaServerEngine({ binary, gpu: config.gpu, estimator: inProcess, stateDir });
  const openLlamaServer = async (): Promise<LlamaServerEngine> => llamaServerAt((await locateLlamaServer()).binary);
  const inProcessByDefault = (notice: Notice): Engine => {
    notify(notice);
    return new EngineRouter(inProcess, new Map([["llama-server", openLlamaServer], ["upstream", upstream]]));
  };
  if (config.engine === "llama-cpp") return inProcessByDefault({ level: "info", message: "engine: in-process llama.cpp (node-llama-cpp)" });
  try {
    const { binary, version } = await locateLlamaServer();
    const variant = await buildVariant(binary);
    if (config.engine === "auto" && gpu !== false && variant !== undefined && !variant.includes(gpu)) {
      const message =
        `engine: in-process llama.cpp, because it runs on ${gpu} and the llama-server build (${variant}) has no ${gpu} backend; ` +
        `AI_SERVER_LLAMA_SERVER_VARIANT=${process.platform}-${process.arch}-${gpu} node scripts/build-llama-server.mjs --force builds one`;
      return inProcessByDefault({ level: "info", message });
    }
    const engine = llamaServerAt(binary);
    notify({ level: "info", message: `engine: llama-server, one process per model (${binary}, ${version})` });
    return new EngineRouter(engine, new Map([["llama-cpp", () => Promise.resolve(inProcess)], ["upstream", upstream]]));
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    return inProcessByDefault(
      config.engine === "auto"
        ? { level: "info", message: `engine: in-process llama.cpp (${reason}; the llama-server engine decodes faster)` }
        : { level: "warn", message: `AI_SERVER_ENGINE=llama-server, but ${reason}; using the in-process llama.cpp engine instead` },
    );
  }
}

interface Notice {
  level: "info" | "warn";
  message: string;
}

type LlamaGpuName = Exclude<Awaited<ReturnType<LlamaCppEngine["gpu"]>>["backend"], false>;
