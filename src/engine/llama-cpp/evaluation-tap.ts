import type { LlamaContextSequence, SequenceEvaluateOptions, Token } from "node-llama-cpp";

/** A sampled token with the probability it was sampled with, and the most likely tokens of that step. */
export interface Sample {
  token: Token;
  probability: number;
  /** The `top` most likely tokens with their probabilities, most likely first (empty when none were asked). */
  top: [Token, number][];
}

type Evaluate = LlamaContextSequence["evaluate"];
type EvaluateWithoutGenerating = LlamaContextSequence["evaluateWithoutGeneratingNewTokens"];

/**
 * Watches one request's evaluation on its sequence: how many prompt tokens there were and how many of them the KV
 * cache already held, every token sampled (thinking and tool-call syntax included, which the text callbacks leave
 * out), when the first was sampled, and, when asked, each sample's probabilities.
 *
 * How: node-llama-cpp 3.21.1's LlamaChat and LlamaCompletion evaluate through `sequence.evaluate()` (and LlamaChat
 * sometimes `evaluateWithoutGeneratingNewTokens()` first). While installed, the tap shadows those two methods on the
 * sequence object and runs the public `evaluateWithMetadata()` in their place, as `evaluate()` itself does, asking
 * for the sampled token's probability (and the whole distribution when top tokens are wanted). The probabilities are
 * those of the distribution the token was drawn from: after logit bias, penalties, top-k/top-p/min-p and temperature
 * (at temperature 0, the model's distribution over the whole vocabulary).
 *
 * Relies on which sequence methods node-llama-cpp calls, pinned with the package (exactly 3.21.1).
 */
export class EvaluationTap {
  /** Prompt tokens in the sequence when the first token was sampled (those reused from the cache included). */
  promptTokens = 0;
  /** Of the prompt, tokens the sequence's KV cache held already when evaluation began. */
  cachedTokens = 0;
  /** Tokens sampled so far. */
  sampled = 0;
  /** When the first token was sampled (process.hrtime.bigint()). */
  firstSampleAt?: bigint;
  private evaluated = false;

  /**
   * @param options.probabilities absent: none; `top` 0: the sampled token's; else also the `top` most likely tokens
   * @param options.onSample receives every sampled token, with its probabilities when they are asked for
   */
  constructor(
    private readonly sequence: LlamaContextSequence,
    private readonly options: { probabilities?: { top: number }; onSample?: (token: Token, sample?: Sample) => void } = {},
  ) {}

  /** Starts watching the sequence; call `uninstall` before the sequence serves another request. */
  install(): void {
    const sequence = this.sequence;
    const prototype = Object.getPrototypeOf(sequence) as LlamaContextSequence;
    if (typeof prototype.evaluateWithMetadata !== "function" || typeof prototype.evaluateWithoutGeneratingNewTokens !== "function") {
      throw new Error("node-llama-cpp's context sequence changed: cannot watch its evaluation");
    }
    const evaluate: Evaluate = (tokens, options) => this.evaluate(tokens, options);
    const evaluateWithoutGenerating: EvaluateWithoutGenerating = (tokens, options) => {
      this.noteInput(tokens.length);
      return prototype.evaluateWithoutGeneratingNewTokens.call(sequence, tokens, options);
    };
    Object.defineProperty(sequence, "evaluate", { value: evaluate, configurable: true, writable: true });
    Object.defineProperty(sequence, "evaluateWithoutGeneratingNewTokens", { value: evaluateWithoutGenerating, configurable: true, writable: true });
  }

  uninstall(): void {
    delete (this.sequence as unknown as Record<string, unknown>)["evaluate"];
    delete (this.sequence as unknown as Record<string, unknown>)["evaluateWithoutGeneratingNewTokens"];
  }

  /** Notes tokens about to be evaluated: until a token is sampled, they end up in the prompt. */
  private noteInput(count: number): void {
    if (!this.evaluated) this.cachedTokens = this.sequence.nextTokenIndex;
    this.evaluated = true;
    if (this.sampled === 0) this.promptTokens = this.sequence.nextTokenIndex + count;
  }

  private async *evaluate(tokens: Token[], options?: SequenceEvaluateOptions): AsyncGenerator<Token, void, void | Token | Token[]> {
    this.noteInput(tokens.length);
    const wanted = this.options.probabilities;
    const metadata = wanted === undefined ? {} : wanted.top > 0 ? { probabilities: true } : { confidence: true };
    const iterator = this.sequence.evaluateWithMetadata(tokens, metadata, options);
    let input: void | Token | Token[] = undefined;
    try {
      for (;;) {
        const { value, done } = await iterator.next(input);
        if (done) return;
        this.firstSampleAt ??= process.hrtime.bigint();
        this.sampled++;
        this.options.onSample?.(value.token, wanted && toSample(value, wanted.top));
        input = yield value.token;
      }
    } finally {
      await iterator.return();
    }
  }
}

function toSample(value: { token: Token; confidence?: number; probabilities?: Map<Token, number> }, top: number): Sample {
  const probabilities = value.probabilities;
  if (!probabilities) return { token: value.token, probability: value.confidence ?? 0, top: [] };
  const best: [Token, number][] = [];
  for (const entry of probabilities) {
    if (best.length >= top) break;
    best.push(entry);
  }
  return { token: value.token, probability: probabilities.get(value.token) ?? 0, top: best };
}
