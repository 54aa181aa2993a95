import type { ModelRecord } from "../domain/model.js";
import type { UpstreamConfig } from "../domain/upstream.js";
import { UPSTREAM_ENGINE, type LoadSpec } from "../engine/engine.js";

/** Requests an upstream model sends at once when neither the model nor the settings say (AI_SERVER_UPSTREAM_MAX_PARALLEL's default). */
export const DEFAULT_UPSTREAM_SLOTS = 32;

/**
 * The load spec of a model served by remote endpoints: the upstream engine, the configuration's key in place of a
 * file (so a re-created configuration is another instance), its slots (max_parallel, else the setting) and its
 * context as configured (0: not known). A request's num_ctx changes nothing (the remote engine has its own), so every
 * request fits the loaded instance.
 */
export function upstreamSpec(record: ModelRecord, config: UpstreamConfig, defaultSlots: number): LoadSpec {
  return {
    modelPath: record.modelDigest,
    contextSize: config.contextLength ?? 0,
    slots: config.maxParallel ?? defaultSlots,
    threads: 1,
    engine: UPSTREAM_ENGINE,
    upstream: { model: record.name, config },
  };
}

/** Why an upstream model has its slot count (/api/ps `slots_reason`). */
export function upstreamSlotsReason(config: UpstreamConfig): string {
  return config.maxParallel !== undefined
    ? "the upstream's max_parallel (the remote engine batches them)"
    : "AI_SERVER_UPSTREAM_MAX_PARALLEL (the remote engine batches them)";
}
