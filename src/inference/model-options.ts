import { z } from "zod";
import { optional, describeIssues } from "../api/validation.js";
import type { LoadOptions, SamplingOptions } from "../domain/chat.js";
import { parseDuration } from "../domain/duration.js";
import { InvalidRequestError } from "../domain/errors.js";

/**
 * A model's options by their Ollama names (Modelfile PARAMETERs): the defaults stored with a model, and what a
 * request's `options` object overrides, on every API (the `/v1` routes accept `options` too).
 */

const stringOrList = z.union([z.string(), z.array(z.string())], { error: "expected a string or an array of strings" });
/** Ollama truncates a fractional value sent for an integer option. */
const integer = z.number().transform(Math.trunc);

/**
 * Only the keys we use are checked; every other key (num_gpu, numa, mirostat, f16_kv, …, which clients still send)
 * is tolerated and ignored.
 */
export const optionsSchema = z.object({
  temperature: optional(z.number()),
  top_k: optional(integer),
  top_p: optional(z.number()),
  min_p: optional(z.number()),
  seed: optional(integer),
  num_predict: optional(integer),
  num_ctx: optional(integer),
  stop: optional(stringOrList),
  repeat_penalty: optional(z.number()),
  repeat_last_n: optional(integer),
  presence_penalty: optional(z.number()),
  frequency_penalty: optional(z.number()),
});
export type ModelOptions = z.output<typeof optionsSchema>;

/** Validates stored or requested options alone (for model parameters). */
export function parseOptions(options: unknown, field = "parameters"): ModelOptions {
  const result = optionsSchema.safeParse(options ?? {});
  if (!result.success) throw new InvalidRequestError(describeIssues(result.error.issues, [field]));
  return result.data;
}

/** The model's stored PARAMETERs are defaults; the request's `options` win key by key. */
export function effectiveOptions(modelParameters: Record<string, unknown>, request: ModelOptions | undefined): ModelOptions {
  const merged: Record<string, unknown> = { ...parseOptions(modelParameters) };
  for (const [key, value] of Object.entries(request ?? {})) if (value !== undefined) merged[key] = value;
  return merged;
}

export function toSampling(options: ModelOptions): SamplingOptions {
  const stop = typeof options.stop === "string" ? [options.stop] : options.stop;
  return dropUndefined({
    temperature: options.temperature,
    topK: options.top_k,
    topP: options.top_p,
    minP: options.min_p,
    // Ollama: seed -1 = random; num_predict -1 = unlimited, -2 = fill the context.
    seed: options.seed !== undefined && options.seed >= 0 ? options.seed : undefined,
    maxTokens: options.num_predict !== undefined && options.num_predict >= 0 ? options.num_predict : undefined,
    stop: stop && stop.length > 0 ? stop : undefined,
    repeatPenalty: options.repeat_penalty,
    repeatLastN: options.repeat_last_n,
    presencePenalty: options.presence_penalty,
    frequencyPenalty: options.frequency_penalty,
  });
}

export function toLoadOptions(options: ModelOptions): LoadOptions {
  return options.num_ctx !== undefined && options.num_ctx > 0 ? { contextSize: options.num_ctx } : {};
}

/** `keep_alive`: seconds or a duration string; negative = for ever (-1), 0 = unload when done. */
export function toKeepAliveMs(value: string | number | undefined): number | undefined {
  if (value === undefined) return undefined;
  try {
    return parseDuration(value);
  } catch {
    throw new InvalidRequestError(`keep_alive: invalid duration ${JSON.stringify(value)}`);
  }
}

/** Removes keys whose value is undefined, so optional domain fields are absent rather than undefined. */
export function dropUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}
