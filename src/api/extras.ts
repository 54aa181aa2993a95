import { z } from "zod";
import type { ModelRecord } from "../domain/model.js";
import { effectiveOptions, optionsSchema, type ModelOptions } from "../inference/model-options.js";
import { runSpec, type RunSpec } from "../inference/run-model.js";
import { optional } from "./validation.js";

/**
 * Fields beyond OpenAI's and Anthropic's that every `/v1` route takes, so that what Ollama users set on the native
 * API works there too: `options` (model options by their Ollama names), `num_ctx` (shorthand for options.num_ctx)
 * and `keep_alive`.
 */
export const extraFields = {
  options: optional(optionsSchema),
  num_ctx: optional(z.number().int().positive("must be positive")),
  keep_alive: optional(z.union([z.number(), z.string()], { error: "expected a duration string or a number of seconds" })),
};

export interface ExtraFields {
  options?: ModelOptions | undefined;
  num_ctx?: number | undefined;
  keep_alive?: string | number | undefined;
}

/** The model's stored options, overridden by the request's `options`, then by `num_ctx`. */
export function requestOptions(record: ModelRecord, body: ExtraFields): ModelOptions {
  const options = effectiveOptions(record.parameters, body.options);
  return body.num_ctx !== undefined ? { ...options, num_ctx: body.num_ctx } : options;
}

/** How the request's model must be loaded and kept (context size, keep-alive), with the client's signal. */
export function extrasRunSpec(record: ModelRecord, options: ModelOptions, body: ExtraFields, signal: AbortSignal, startedNs: bigint): RunSpec {
  return runSpec(record, options, body.keep_alive, signal, startedNs);
}
