import type { Token } from "node-llama-cpp";
import type { TokenCandidate, TokenLogprob } from "../../domain/generation.js";
import type { Sample } from "./evaluation-tap.js";
import type { Vocabulary } from "./vocabulary.js";

/** The log-probability reported for a token that had none (a token a grammar forced against the model), as OpenAI does. */
const FLOOR = -9999;

/**
 * Pairs the tokens of each output chunk with the samples that produced them. Every sample arrives in order; a chunk's
 * tokens are a subsequence of them, because some sampled tokens are never shown as text (a stop sequence held back and
 * dropped, tool-call syntax, reasoning), so samples that do not match are skipped.
 */
export class LogprobsCollector {
  private readonly samples: Sample[] = [];

  constructor(private readonly vocabulary: Vocabulary) {}

  add(sample: Sample): void {
    this.samples.push(sample);
  }

  /** The log-probabilities of one chunk's tokens (those with no sample left out). */
  take(tokens: readonly Token[]): TokenLogprob[] {
    const result: TokenLogprob[] = [];
    for (const token of tokens) {
      const sample = this.match(token);
      if (sample) result.push({ ...this.candidate(token, sample.probability), top: sample.top.map(([id, p]) => this.candidate(id, p)) });
    }
    return result;
  }

  /** Passes over tokens shown without log-probabilities (reasoning), so that later chunks pair with later samples. */
  skip(tokens: readonly Token[]): void {
    for (const token of tokens) this.match(token);
  }

  /** The first sample of `token`, dropping it and every sample before it. */
  private match(token: Token): Sample | undefined {
    const at = this.samples.findIndex((sample) => sample.token === token);
    return at === -1 ? undefined : this.samples.splice(0, at + 1).at(-1);
  }

  private candidate(token: Token, probability: number): TokenCandidate {
    const piece = this.vocabulary.piece(token);
    return { token: piece, logprob: probability > 0 ? Math.max(FLOOR, Math.log(probability)) : FLOOR, bytes: this.vocabulary.bytes(token, piece) };
  }
}
