import { InvalidRequestError } from "../domain/errors.js";
import type { ModelRecord } from "../domain/model.js";
import { ENGINE_NAMES, type EngineName, type SpeculativeSpec } from "../engine/engine.js";

/**
 * A model's speculative decoding, from its stored parameters (set on `/api/create` with `parameters`):
 * - `draft_model`: the name of another model in the store sharing this one's tokenizer, used as the draft;
 * - `speculative: "lookup"`: draftless, guesses copied from the prompt;
 * - `draft_num_predict`: most tokens guessed per step (Ollama's option name; default 8).
 * Returns undefined when none is configured. Throws when the draft model does not exist.
 */
export function speculativeFor(
  record: ModelRecord,
  lookup: (name: string) => ModelRecord | undefined,
  modelPath: (modelDigest: string) => string,
): SpeculativeSpec | undefined {
  const count = Number(record.parameters.draft_num_predict);
  const maxTokens = Number.isInteger(count) && count > 0 && count <= 64 ? { maxTokens: count } : {};
  const draft = record.parameters.draft_model;
  if (typeof draft === "string" && draft !== "") {
    const draftRecord = lookup(draft);
    if (!draftRecord) throw new InvalidRequestError(`draft model "${draft}" of "${record.name}" not found`);
    return { type: "draft", modelPath: modelPath(draftRecord.modelDigest), ...maxTokens };
  }
  if (record.parameters.speculative === "lookup") return { type: "lookup", ...maxTokens };
  return undefined;
}

/** The engine a model's `engine` parameter names (set on `/api/create`, checked there), or undefined for the default. */
export function engineFor(record: ModelRecord): EngineName | undefined {
  const name = record.parameters.engine;
  return ENGINE_NAMES.find((known) => known === name);
}
