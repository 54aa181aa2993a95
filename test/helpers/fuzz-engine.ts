import type { EmbedRequest } from "../../src/domain/embedding.js";
import { InvalidRequestError } from "../../src/domain/errors.js";
import type { LoadedModel, LoadSpec } from "../../src/engine/engine.js";
import { FakeEngine } from "./fake-engine.js";

/** The fake models' vocabulary size: ids past it are refused, as both real engines refuse them. */
const VOCABULARY = 1000;

/**
 * The fake engine, bounded where the real engines are and the fake is not: `dimensions` keeps at most the vector's
 * own length (the real engines slice), and token ids outside the vocabulary are refused with a 400 (the real engines
 * check them against the model's). Without this, a fuzzed `dimensions: 1e9` or token id 2^31 would make the fake
 * itself allocate gigabytes, which says nothing about the server.
 */
export class BoundedFakeEngine extends FakeEngine {
  override async load(spec: LoadSpec): Promise<LoadedModel> {
    const model = await super.load(spec);
    const bounded = Object.create(model) as LoadedModel;
    bounded.embed = (request: EmbedRequest, signal: AbortSignal) =>
      model.embed({ ...request, ...(request.dimensions !== undefined && { dimensions: Math.min(request.dimensions, 4) }) }, signal);
    bounded.detokenize = async (tokens: readonly number[], signal: AbortSignal) => {
      const outside = tokens.find((id) => id >= VOCABULARY);
      if (outside !== undefined) throw new InvalidRequestError(`token id ${outside} is not in the model's vocabulary (ids 0 to ${VOCABULARY - 1})`);
      return model.detokenize(tokens, signal);
    };
    return bounded;
  }
}
