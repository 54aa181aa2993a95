import type { LlamaModel, Token as LlamaToken } from "node-llama-cpp";
import type { Token, TokenizeRequest } from "../../domain/embedding.js";
import { InvalidRequestError } from "../../domain/errors.js";

/**
 * A model's tokenizer as the API sees it: token ids checked against the vocabulary (llama.cpp aborts the process on
 * an id it does not have, so no client id reaches it unchecked), tokens with their pieces, and the UTF-8 bytes of a
 * token, as llama-server reports them.
 */
export class Vocabulary {
  /** Number of tokens in the vocabulary: valid ids are 0 to size - 1. */
  readonly size: number;
  /** A token put before another to read that one's piece: llama.cpp drops the leading space of a text's first token. */
  private readonly anchor?: LlamaToken;
  private bpeBytes?: Map<string, number>;

  constructor(private readonly model: LlamaModel) {
    const tokens = model.fileInfo.metadata?.tokenizer?.ggml?.tokens;
    this.size = Array.isArray(tokens) ? tokens.length : 0;
    this.anchor = model.tokens.bos ?? model.tokens.eos ?? model.tokens.nl ?? undefined;
  }

  /** The ids as tokens; throws InvalidRequestError naming the first id outside the vocabulary (`what` says whose ids). */
  check(ids: readonly number[], what: string): LlamaToken[] {
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= this.size) {
        throw new InvalidRequestError(`${what}: token id ${id} is not in the model's vocabulary (ids 0 to ${this.size - 1})`);
      }
    }
    return ids as LlamaToken[];
  }

  /**
   * The text's tokens as llama.cpp's tokenizer makes them: special-token text parsed into those tokens when asked,
   * and with `addSpecial` the start and end tokens the model's vocabulary adds to a prompt (a WordPiece vocabulary:
   * its CLS and SEP tokens).
   */
  tokenize(request: TokenizeRequest): Token[] {
    const ids: LlamaToken[] = this.model.tokenize(request.text, request.parseSpecial);
    if (request.addSpecial) {
      const { bos, eos, sep, shouldPrependBosToken, shouldAppendEosToken } = this.model.tokens;
      if (this.model.vocabularyType === "wpm") {
        if (bos !== null) ids.unshift(bos);
        if (sep !== null) ids.push(sep);
      } else {
        if (shouldPrependBosToken && bos !== null) ids.unshift(bos);
        if (shouldAppendEosToken && eos !== null) ids.push(eos);
      }
    }
    return ids.map((id) => ({ id, piece: this.piece(id) }));
  }

  /** The text of token ids, each token's piece in turn (special tokens as their text), as llama-server's /detokenize. */
  detokenize(ids: readonly number[]): string {
    const tokens = this.check(ids, "detokenize");
    if (tokens.length === 0) return "";
    return this.anchor === undefined ? this.model.detokenize(tokens, true) : this.model.detokenize(tokens, true, [this.anchor]);
  }

  /** One token's text, with its leading space (a piece of a character shows as U+FFFD). */
  piece(id: LlamaToken): string {
    return this.detokenize([id]);
  }

  /** A token's UTF-8 bytes: a byte token's single byte, not the U+FFFD its piece shows. */
  bytes(id: LlamaToken, piece = this.piece(id)): number[] {
    if (!piece.includes("\uFFFD")) return [...Buffer.from(piece, "utf8")];
    const text = this.tokenText(id);
    if (text !== undefined) {
      const byte = /^<0x([0-9A-Fa-f]{2})>$/.exec(text);
      if (byte?.[1] !== undefined && this.model.vocabularyType === "spm") return [Number.parseInt(byte[1], 16)];
      if (this.model.vocabularyType === "bpe") {
        const bytes = this.fromByteLevel(text);
        if (bytes) return bytes;
      }
    }
    return [...Buffer.from(piece, "utf8")];
  }

  private tokenText(id: LlamaToken): string | undefined {
    const tokens = this.model.fileInfo.metadata?.tokenizer?.ggml?.tokens;
    const text: unknown = Array.isArray(tokens) ? tokens[id] : undefined;
    return typeof text === "string" ? text : undefined;
  }

  /** A byte-level BPE token's bytes (GPT-2's byte-to-character table, reversed), or undefined if it is not one. */
  private fromByteLevel(text: string): number[] | undefined {
    this.bpeBytes ??= byteLevelTable();
    const bytes: number[] = [];
    for (const char of text) {
      const byte = this.bpeBytes.get(char);
      if (byte === undefined) return undefined;
      bytes.push(byte);
    }
    return bytes;
  }
}

/** GPT-2's byte-level alphabet: printable bytes stand for themselves, the others for U+0100 onwards. */
function byteLevelTable(): Map<string, number> {
  const table = new Map<string, number>();
  const printable = (b: number): boolean => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  let next = 0;
  for (let b = 0; b < 256; b++) {
    if (printable(b)) table.set(String.fromCodePoint(b), b);
    else table.set(String.fromCodePoint(256 + next++), b);
  }
  return table;
}
