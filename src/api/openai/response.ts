import type { ModelRecord } from "../../domain/model.js";
import type { TokenCandidate, TokenLogprob } from "../../domain/generation.js";
import type { Outcome } from "../../inference/run-model.js";
import { randomId } from "../random-id.js";

/** What every OpenAI response of both routes shares: the id, the time, the model, usage. */

/** The fields every chunk of one response repeats unchanged. */
export interface ResponseHead {
  id: string;
  /** Unix seconds, when the request arrived. */
  created: number;
  /** The model as the client named it. */
  model: string;
  system_fingerprint: string;
}

/** A new response's head: a fresh id with OpenAI's prefix, now, the model as named, the model's fingerprint. */
export function responseHead(prefix: "chatcmpl" | "cmpl", model: string, record: ModelRecord): ResponseHead {
  return {
    id: `${prefix}-${randomId(24)}`,
    created: Math.floor(Date.now() / 1000),
    model,
    // Which weights, template and parameters answered: the manifest's digest.
    system_fingerprint: `fp_${record.digest.slice(0, 10)}`,
  };
}

/** OpenAI's usage, with the cached-prompt and reasoning token details. */
export interface WireUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details: { cached_tokens: number };
  completion_tokens_details: { reasoning_tokens: number };
}

/**
 * Usage of a whole response. Every choice of one prompt read the same prompt, so the prompt is counted once per
 * prompt (from its first choice, whose `index % choicesPerPrompt` is 0); completion and reasoning tokens are the
 * sums over all choices.
 */
export function toWireUsage(outcomes: ReadonlyMap<number, Outcome>, choicesPerPrompt: number): WireUsage {
  let prompt = 0;
  let cached = 0;
  let completion = 0;
  let reasoning = 0;
  for (const [index, outcome] of outcomes) {
    const usage = outcome.usage;
    if (!usage) continue;
    if (index % choicesPerPrompt === 0) {
      prompt += usage.promptTokens;
      cached += usage.cachedTokens ?? 0;
    }
    completion += usage.completionTokens;
    reasoning += usage.reasoningTokens ?? 0;
  }
  return {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: prompt + completion,
    prompt_tokens_details: { cached_tokens: cached },
    completion_tokens_details: { reasoning_tokens: reasoning },
  };
}

/** One token's log-probability in chat's shape. */
export interface WireTokenLogprob {
  token: string;
  logprob: number;
  bytes: number[];
  top_logprobs: Array<{ token: string; logprob: number; bytes: number[] }>;
}

/** Domain log-probabilities in chat's shape. */
export function toWireLogprobs(logprobs: readonly TokenLogprob[]): WireTokenLogprob[] {
  return logprobs.map((entry) => ({ ...candidate(entry), top_logprobs: entry.top.map(candidate) }));
}

function candidate({ token, logprob, bytes }: TokenCandidate): { token: string; logprob: number; bytes: number[] } {
  return { token, logprob, bytes };
}
