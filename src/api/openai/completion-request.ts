import type { CompletionRequest } from "../../domain/chat.js";
import { CapabilityError, InvalidRequestError } from "../../domain/errors.js";
import type { ModelRecord } from "../../domain/model.js";
import { dropUndefined, type ModelOptions } from "../../inference/model-options.js";
import { toOutputFormat } from "./chat-request.js";
import { openaiOptions, openaiSampling } from "./sampling.js";
import { MAX_CHOICES, type CompletionBody } from "./schemas.js";

/** Pure mapping of a (legacy) completion request onto domain CompletionRequests: one per prompt. */

/** A mapped completion request: one domain request per prompt, and how its choices are laid out. */
export interface MappedCompletion {
  /** One request per prompt, each raw: OpenAI's completions continue the text as given, without a chat template. */
  requests: CompletionRequest[];
  options: ModelOptions;
  /** Choices per prompt. */
  n: number;
  echo: boolean;
}

/**
 * Maps and checks a completion request against its model (`model` as the client sent it, for messages). Refuses
 * what would otherwise be silently wrong: token-id prompts, `suffix` on a model without fill-in-the-middle, `echo`
 * with `logprobs` (the prompt's log-probabilities are not computed), `best_of` above `n`.
 */
export function toCompletionRequests(body: CompletionBody, record: ModelRecord, model: string): MappedCompletion {
  if (!record.metadata.capabilities.includes("completion")) throw new CapabilityError(model, "completions");
  const suffix = body.suffix === "" ? undefined : body.suffix;
  if (suffix !== undefined && !record.metadata.capabilities.includes("insert")) throw new CapabilityError(model, "insert (suffix)");
  const prompts = toPrompts(body.prompt);
  const n = body.n ?? 1;
  if (prompts.length * n > MAX_CHOICES) throw new InvalidRequestError(`n: ${n} choices for each of ${prompts.length} prompts are more than ${MAX_CHOICES}`);
  if (body.best_of !== undefined && body.best_of > n) throw new InvalidRequestError("best_of: choosing the best of several completions is not supported (use n)");
  const echo = body.echo ?? false;
  if (echo && body.logprobs !== undefined) throw new InvalidRequestError("echo: echo with logprobs is not supported");

  const options = openaiOptions(record, body, body.max_tokens);
  const shared = {
    raw: true,
    format: toOutputFormat(body.response_format),
    sampling: openaiSampling(options, body.logit_bias),
    logprobs: body.logprobs !== undefined ? { top: body.logprobs } : undefined,
  };
  const requests = prompts.map((prompt): CompletionRequest => dropUndefined({ prompt, suffix, ...shared }));
  return { requests, options, n, echo };
}

function toPrompts(prompt: CompletionBody["prompt"]): string[] {
  if (typeof prompt === "string") return [prompt];
  if (prompt.every((p): p is string => typeof p === "string")) return prompt;
  throw new InvalidRequestError("prompt: token-id prompts are not supported; send the text");
}
