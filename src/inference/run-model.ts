import type { FinishReason, GenerationEvent, Usage } from "../domain/generation.js";
import type { ModelRecord } from "../domain/model.js";
import type { Lease, Scheduler } from "../scheduler/scheduler.js";
import type { Metrics } from "../server/metrics.js";
import { beginWork, currentRequest, recordUsage } from "./request-context.js";
import { toKeepAliveMs, toLoadOptions, type ModelOptions } from "./model-options.js";
import { inSession } from "./session.js";

/**
 * Running a request on a model, whatever protocol it came in: lease a slot from the scheduler, run the engine,
 * time it, release. Every protocol adapter uses this; none reaches into another's folder.
 */

/** One request's claim on a model: which model, how it must be loaded, and the client's signal. */
export interface RunSpec {
  record: ModelRecord;
  contextSize?: number;
  keepAliveMs?: number;
  /** Fires when the client goes away; it reaches the scheduler queue and the engine. */
  signal: AbortSignal;
  /** process.hrtime.bigint() when the request arrived (for total_duration). */
  startedNs: bigint;
}

/** The RunSpec of a request: `num_ctx` from its effective options, its `keep_alive`, its client signal. */
export function runSpec(record: ModelRecord, options: ModelOptions, keepAlive: string | number | undefined, signal: AbortSignal, startedNs: bigint): RunSpec {
  const spec: RunSpec = { record, ...toLoadOptions(options), signal, startedNs };
  const keepAliveMs = toKeepAliveMs(keepAlive);
  if (keepAliveMs !== undefined) spec.keepAliveMs = keepAliveMs;
  return spec;
}

/** How a generation ended, with its timing. `usage` is absent for the load/unload forms. */
export interface Outcome {
  reason: FinishReason | "load" | "unload";
  usage?: Usage;
  /** Prompt + response token ids (templated completions only). */
  context?: number[];
  totalDurationNs: number;
  loadDurationNs: number;
}

/** An engine event, with the final `done` turned into a timed Outcome. */
export type RunEvent = Exclude<GenerationEvent, { type: "done" }> | { type: "done"; outcome: Outcome };

type LoadedModel = Lease["model"];

/**
 * Leases a slot on the model, runs `generate` on it and yields its events. The lease is released however the
 * stream ends: completed, failed, or closed early by a departed client.
 */
export async function* streamOnModel(
  { scheduler, metrics }: { scheduler: Scheduler; metrics: Metrics },
  spec: RunSpec,
  generate: (model: LoadedModel, signal: AbortSignal) => AsyncIterable<GenerationEvent>,
): AsyncGenerator<RunEvent> {
  const { lease, loadDurationNs } = await acquire(scheduler, spec);
  /** Arrival → first output, for the metrics (set once: nothing is measured per token). */
  let firstOutputNs: number | undefined;
  /** The audit log's copy of the text, when it keeps content (looked up once: nothing is paid per token otherwise). */
  const keepText = currentRequest()?.output?.generation();
  // Output handed on before the stream ended: a client that leaves mid-stream still spent it (rate limits, audit).
  let pieces = 0;
  let done = false;
  const endWork = beginWork();
  try {
    for await (const event of generate(inSession(lease.model, currentRequest()?.session), spec.signal)) {
      if (event.type !== "done") {
        firstOutputNs ??= since(spec.startedNs);
        if (keepText !== undefined && event.type === "text") keepText(event.text);
        pieces++;
        yield event;
        continue;
      }
      done = true;
      const totalDurationNs = since(spec.startedNs);
      const timing = { queueNs: loadDurationNs, firstOutputNs, totalNs: totalDurationNs, aborted: spec.signal.aborted };
      metrics.generation(spec.record.name, event.usage, event.reason, timing);
      recordUsage(spec.record.name, event.usage);
      const outcome: Outcome = { reason: event.reason, usage: event.usage, totalDurationNs, loadDurationNs };
      if (event.context) outcome.context = event.context;
      yield { type: "done", outcome };
    }
  } finally {
    lease.release();
    // Cut short before `done` (the client left): count each piece handed on as a token, the prompt as unknown.
    if (!done && pieces > 0) recordUsage(spec.record.name, { promptTokens: 0, completionTokens: pieces, promptDurationNs: 0, evalDurationNs: 0 });
    endWork();
  }
}

/**
 * Leases a slot, runs `work` on the model, releases. Resolves to the result and the time spent getting the slot.
 * `promptTokensOf` says how many tokens the work read (embeddings, rerank), which the request is charged.
 */
export async function onModel<T>(
  scheduler: Scheduler,
  spec: RunSpec,
  work: (model: LoadedModel, signal: AbortSignal) => Promise<T>,
  promptTokensOf?: (result: T) => number,
): Promise<{ result: T; loadDurationNs: number }> {
  const { lease, loadDurationNs } = await acquire(scheduler, spec);
  try {
    const result = await work(lease.model, spec.signal);
    if (promptTokensOf) recordUsage(spec.record.name, { promptTokens: promptTokensOf(result), completionTokens: 0, promptDurationNs: 0, evalDurationNs: 0 });
    return { result, loadDurationNs };
  } finally {
    lease.release();
  }
}

/**
 * The "empty prompt" forms of generate and chat: `keep_alive: 0` unloads the model, anything else loads it (and
 * starts its keep-alive countdown) without generating.
 */
export async function loadOrUnload(scheduler: Scheduler, spec: RunSpec): Promise<Outcome> {
  if (spec.keepAliveMs === 0) {
    await scheduler.unload(spec.record);
    return { reason: "unload", totalDurationNs: since(spec.startedNs), loadDurationNs: 0 };
  }
  const { loadDurationNs } = await onModel(scheduler, spec, async () => undefined);
  return { reason: "load", totalDurationNs: since(spec.startedNs), loadDurationNs };
}

/**
 * `load_duration` is, as in Ollama, the time spent getting a ready model: loading it, or waiting for a slot.
 */
async function acquire(scheduler: Scheduler, spec: RunSpec): Promise<{ lease: Lease; loadDurationNs: number }> {
  const start = process.hrtime.bigint();
  const lease = await scheduler.acquire(
    spec.record,
    {
      ...(spec.contextSize !== undefined && { contextSize: spec.contextSize }),
      ...(spec.keepAliveMs !== undefined && { keepAliveMs: spec.keepAliveMs }),
    },
    spec.signal,
  );
  return { lease, loadDurationNs: since(start) };
}

export function since(startNs: bigint): number {
  return Number(process.hrtime.bigint() - startNs);
}

/** An async iterable of the given items (for answers that are ready at once). */
export async function* just<T>(...items: T[]): AsyncGenerator<T> {
  yield* items;
}
