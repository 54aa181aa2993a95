import { TokenBias, type LLamaChatGenerateResponseOptions, type LlamaModel } from "node-llama-cpp";
import type { SamplingOptions } from "../../domain/chat.js";
import { InvalidRequestError } from "../../domain/errors.js";
import type { Vocabulary } from "./vocabulary.js";

/** The sampling options node-llama-cpp's chat and completion calls share. */
export type LlamaSampling = Pick<
  LLamaChatGenerateResponseOptions,
  "temperature" | "topK" | "topP" | "minP" | "seed" | "maxTokens" | "repeatPenalty" | "customStopTriggers"
>;

/**
 * Domain sampling → node-llama-cpp options. Unset values keep Ollama's defaults (temperature 0.8, top_k 40,
 * top_p 0.9) so answers match what Ollama users expect; `maxTokens` is always bounded by `limit` so a model
 * that never emits an end token cannot run for ever.
 */
export function toLlamaSampling(sampling: SamplingOptions, limit: number): LlamaSampling {
  const maxTokens = sampling.maxTokens !== undefined && sampling.maxTokens >= 0 ? Math.min(sampling.maxTokens, limit) : limit;
  const penalise = [sampling.repeatPenalty, sampling.presencePenalty, sampling.frequencyPenalty].some((v) => v !== undefined && v !== 0 && v !== 1);
  return {
    temperature: sampling.temperature ?? 0.8,
    topK: sampling.topK ?? 40,
    topP: sampling.topP ?? 0.9,
    ...(sampling.minP !== undefined && { minP: sampling.minP }),
    ...(sampling.seed !== undefined && sampling.seed >= 0 && { seed: sampling.seed }),
    maxTokens,
    repeatPenalty: penalise
      ? {
          ...(sampling.repeatPenalty !== undefined && { penalty: sampling.repeatPenalty }),
          ...(sampling.presencePenalty !== undefined && { presencePenalty: sampling.presencePenalty }),
          ...(sampling.frequencyPenalty !== undefined && { frequencyPenalty: sampling.frequencyPenalty }),
          ...(sampling.repeatLastN !== undefined && sampling.repeatLastN > 0 && { lastTokens: sampling.repeatLastN }),
        }
      : false,
    ...(sampling.stop !== undefined && sampling.stop.length > 0 && { customStopTriggers: sampling.stop.filter((s) => s !== "") }),
  };
}

/**
 * Domain logit bias → node-llama-cpp's token bias (added to each token's logit before sampling, as llama.cpp's
 * logit-bias sampler does), or undefined when there is none. Throws InvalidRequestError for an id outside the
 * vocabulary, and for a bias on an end-of-generation token, which node-llama-cpp leaves out of every token bias.
 */
export function toTokenBias(model: LlamaModel, vocabulary: Vocabulary, logitBias: SamplingOptions["logitBias"]): TokenBias | undefined {
  if (logitBias === undefined || logitBias.length === 0) return undefined;
  const bias = new TokenBias(model.tokenizer);
  for (const [id, value] of logitBias) {
    const [token] = vocabulary.check([id], "logit bias");
    if (token === undefined) continue;
    if (model.isEogToken(token)) {
      throw new InvalidRequestError(
        `logit bias: token ${id} ends generation, and a bias on it is not supported by the llama-cpp engine (AI_SERVER_ENGINE=llama-server serves it)`,
      );
    }
    bias.set(token, { logit: value });
  }
  return bias;
}
