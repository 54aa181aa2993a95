/** What building a prompt needs from the model's tokenizer. */
export interface Vocabulary {
  /** Text of every token, in id order. */
  tokenTexts(): Iterable<string>;
  /** Tokens of `text`, without BOS (as the server's raw path tokenizes it). */
  tokenize(text: string): readonly number[];
}

/**
 * `count` different prompts of exactly `tokens` tokens each, made of whole words of the model's vocabulary.
 * Each prompt starts with a different word, so a sequence that kept the previous prompt's KV cache only
 * reuses the BOS token and really reads the whole prompt, on both sides of the comparison.
 */
export function buildPrompts(vocab: Vocabulary, tokens: number, count: number): string[] {
  const unique = new Set<string>();
  for (const text of vocab.tokenTexts()) {
    const word = text.trim();
    if (/^[a-z]{3,}$/i.test(word)) unique.add(word);
  }
  const words = [...unique];
  if (words.length < count * tokens) throw new Error(`the vocabulary has only ${words.length} words`);
  const stride = Math.floor(words.length / count);
  return Array.from({ length: count }, (_, k) => promptOf(vocab, words.slice(k * stride, (k + 1) * stride), tokens));
}

/** Appends words in order, skipping any that would overshoot, until the text is exactly `tokens` tokens. */
function promptOf(vocab: Vocabulary, words: readonly string[], tokens: number): string {
  let text = "";
  for (const word of words) {
    const candidate = text === "" ? word : `${text} ${word}`;
    const length = vocab.tokenize(candidate).length;
    if (length > tokens) continue;
    text = candidate;
    if (length === tokens) return text;
  }
  throw new Error(`could not build a prompt of ${tokens} tokens`);
}
