import type { LLamaChatGenerateResponseOptions } from "node-llama-cpp";
import type { SamplingOptions } from "../../domain/chat.js";

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
