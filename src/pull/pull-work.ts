import path from "node:path";
import type { Config } from "../config/schema.js";
import type { PullWork } from "../jobs/jobs.js";
import type { Scheduler } from "../scheduler/scheduler.js";
import { findInHubCache } from "./hub/hub-cache.js";
import { discardPull, executePull, jobFilesOf, type PullExecutor } from "./pull-execute.js";
import { parsePullName } from "./pull-name.js";
import { planPull, type PullPlan } from "./pull-plan.js";

/** Where the Hub is and how this server authenticates to it, from the settings. */
export function hubSettingsOf(config: Config): PullExecutor["hub"] {
  return { endpoint: config.hfEndpoint, token: config.hfToken, tokenPath: config.hfTokenPath, home: config.hfHome };
}

/** HF_HUB_CACHE, else $HF_HOME/hub. */
function hubCacheOf(config: Config): string {
  return config.hfHubCache !== "" ? config.hfHubCache : path.join(config.hfHome, "hub");
}

/** A pull job's work: plan with the Hub or registry, sized by the scheduler's estimate; carried out by the executor. */
export function pullWork(config: Config, scheduler: Scheduler, executor: Omit<PullExecutor, "hub" | "hubCache">, probeDir: string): PullWork<PullPlan> {
  const fullExecutor: PullExecutor = { ...executor, hub: hubSettingsOf(config), hubCache: hubCacheOf(config) };
  const settings = {
    hub: fullExecutor.hub,
    ollamaRegistry: config.ollamaRegistry,
    tempDir: probeDir,
    estimate: (modelPath: string, contextLength: number) => scheduler.footprint(modelPath, contextLength),
    findLocal: async (sha256: string, size: number, hubRepo?: string) =>
      (await executor.store.blobs.sizeOf(sha256)) === size
        ? executor.store.blobs.pathOf(sha256)
        : findInHubCache(fullExecutor.hubCache, hubRepo, sha256.slice("sha256:".length), size),
  };
  return {
    nameOf: (request) => parsePullName(request.model, config.ollamaRegistry, { insecure: request.insecure }).name,
    plan: (request, signal, notice) => planPull(request, settings, signal, notice),
    describe: (plan) => ({ choice: plan.choice, warnings: plan.warnings, files: jobFilesOf(plan) }),
    execute: (plan, progress, signal) => executePull(plan, fullExecutor, progress, signal),
    discard: (plan) => discardPull(plan, fullExecutor.downloader),
  };
}
