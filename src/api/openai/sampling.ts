import type { SamplingOptions } from "../../domain/chat.js";
import { InvalidRequestError } from "../../domain/errors.js";
import type { ModelRecord } from "../../domain/model.js";
import { dropUndefined, toSampling, type ModelOptions } from "../../inference/model-options.js";
import { requestOptions, type ExtraFields } from "../extras.js";

/** The sampling fields an OpenAI request may set (both routes share them). */
export interface WireSampling extends ExtraFields {
  temperature?: number | undefined;
  top_p?: number | undefined;
  top_k?: number | undefined;
  min_p?: number | undefined;
  presence_penalty?: number | undefined;
  frequency_penalty?: number | undefined;
  repeat_penalty?: number | undefined;
  repetition_penalty?: number | undefined;
  seed?: number | undefined;
  stop?: string | string[] | undefined;
  logit_bias?: Record<string, number> | undefined;
}

/**
 * A request's model options, most specific first: the OpenAI fields (`temperature`, `max_tokens`, …), then the
 * extra `options` object and `num_ctx`, then the model's stored parameters, then OpenAI's own defaults for what is
 * still unset: temperature 1 and top_p 1 (as OpenAI and Ollama's /v1 do; the native API's defaults are 0.8 and
 * 0.9). A model whose stored parameters set them keeps its values. `maxTokens` is `max_completion_tokens`, else
 * `max_tokens`.
 */
export function openaiOptions(record: ModelRecord, body: WireSampling, maxTokens: number | undefined): ModelOptions {
  const options: ModelOptions = { ...requestOptions(record, body) };
  const overrides = dropUndefined({
    temperature: body.temperature,
    top_p: body.top_p,
    top_k: body.top_k,
    min_p: body.min_p,
    presence_penalty: body.presence_penalty,
    frequency_penalty: body.frequency_penalty,
    repeat_penalty: body.repeat_penalty ?? body.repetition_penalty,
    seed: body.seed,
    stop: body.stop,
    num_predict: maxTokens,
  });
  const merged: ModelOptions = { ...options, ...overrides };
  merged.temperature ??= 1;
  merged.top_p ??= 1;
  return merged;
}

/** Domain sampling of the options, with `logit_bias` (keys are token ids as strings). */
export function openaiSampling(options: ModelOptions, logitBias: Record<string, number> | undefined): SamplingOptions {
  const sampling = toSampling(options);
  const bias = toLogitBias(logitBias);
  return bias.length > 0 ? { ...sampling, logitBias: bias } : sampling;
}

function toLogitBias(logitBias: Record<string, number> | undefined): Array<readonly [number, number]> {
  return Object.entries(logitBias ?? {}).map(([key, bias]) => {
    if (!/^\d{1,9}$/.test(key)) throw new InvalidRequestError(`logit_bias.${key}: expected a token id`);
    return [Number(key), bias] as const;
  });
}

/**
 * The sampling of choice `index` of several: with a seed, each choice gets its own (seed + index), so that `n`
 * choices differ and the whole answer is still reproducible.
 */
export function choiceSampling(sampling: SamplingOptions, index: number): SamplingOptions {
  return index > 0 && sampling.seed !== undefined ? { ...sampling, seed: sampling.seed + index } : sampling;
}
