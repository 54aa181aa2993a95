import { InternalError } from "../../domain/errors.js";
import type { TokenLogprob } from "../../domain/generation.js";
import type { Outcome } from "../../inference/run-model.js";
import type { ChoiceEvent } from "./choices.js";
import { toWireUsage, type ResponseHead, type WireUsage } from "./response.js";

/** Domain generation events → OpenAI's (legacy) text completion, whole or as chunks. */

/** The legacy log-probabilities: parallel arrays, and each step's alternatives as a token → logprob object. */
export interface LegacyLogprobs {
  tokens: string[];
  token_logprobs: number[];
  top_logprobs: Array<Record<string, number>>;
  /** Where each token starts in the choice's text (the echoed prompt included). */
  text_offset: number[];
}

/** Why a choice ended. */
export type CompletionFinishReason = "stop" | "length";

/** One choice of a completion, or its piece in a chunk. */
export interface CompletionChoice {
  index: number;
  text: string;
  logprobs: LegacyLogprobs | null;
  finish_reason: CompletionFinishReason | null;
}

/** The `stream: false` answer, and each chunk of a stream (same shape). */
export interface TextCompletion extends ResponseHead {
  object: "text_completion";
  choices: CompletionChoice[];
  usage?: WireUsage | null;
}

/** How a completion's choices are laid out and what they carry. */
export interface CompletionShape {
  /** Choices per prompt. */
  n: number;
  /** The prompt of each choice, when it is echoed before the completion. */
  echo?: (index: number) => string;
  logprobs: boolean;
}

/** Per choice: its text so far (for offsets) and its log-probabilities. */
class ChoiceText {
  text = "";
  readonly logprobs: LegacyLogprobs = { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] };

  /** Appends text; returns the legacy log-probabilities of just this piece. */
  add(text: string, logprobs: readonly TokenLogprob[] | undefined): LegacyLogprobs {
    const piece: LegacyLogprobs = { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] };
    let offset = this.text.length;
    for (const entry of logprobs ?? []) {
      piece.tokens.push(entry.token);
      piece.token_logprobs.push(entry.logprob);
      piece.top_logprobs.push(Object.fromEntries(entry.top.map((top) => [top.token, top.logprob])));
      piece.text_offset.push(offset);
      offset += entry.token.length;
    }
    this.text += text;
    for (const key of ["tokens", "token_logprobs", "top_logprobs", "text_offset"] as const) (this.logprobs[key] as unknown[]).push(...piece[key]);
    return piece;
  }
}

function finishReason(outcome: Outcome): CompletionFinishReason {
  return outcome.reason === "length" ? "length" : "stop";
}

/**
 * The stream's chunks: each choice's text as it comes (its echoed prompt first), then a chunk with empty text and
 * the finish reason; with `includeUsage`, `usage: null` on those and a last chunk without choices with the totals.
 */
export async function* completionChunks(
  events: AsyncIterable<ChoiceEvent>,
  head: ResponseHead,
  shape: CompletionShape,
  includeUsage: boolean,
): AsyncGenerator<TextCompletion> {
  const choices = new Map<number, ChoiceText>();
  const outcomes = new Map<number, Outcome>();
  const chunk = (choice: CompletionChoice): TextCompletion => ({ ...head, object: "text_completion", choices: [choice], ...(includeUsage && { usage: null }) });
  for await (const { index, event } of events) {
    let state = choices.get(index);
    if (!state) {
      state = new ChoiceText();
      choices.set(index, state);
      const prompt = shape.echo?.(index);
      if (prompt) {
        state.add(prompt, undefined);
        yield chunk({ index, text: prompt, logprobs: null, finish_reason: null });
      }
    }
    if (event.type === "text" && (event.text !== "" || event.logprobs?.length)) {
      const logprobs = state.add(event.text, event.logprobs);
      yield chunk({ index, text: event.text, logprobs: shape.logprobs ? logprobs : null, finish_reason: null });
    } else if (event.type === "done") {
      outcomes.set(index, event.outcome);
      yield chunk({ index, text: "", logprobs: null, finish_reason: finishReason(event.outcome) });
    }
  }
  if (includeUsage) yield { ...head, object: "text_completion", choices: [], usage: toWireUsage(outcomes, shape.n) };
}

/** The `stream: false` answer: every choice whole, in index order. */
export async function collectCompletion(events: AsyncIterable<ChoiceEvent>, head: ResponseHead, count: number, shape: CompletionShape): Promise<TextCompletion> {
  const states = Array.from({ length: count }, (_, index) => {
    const state = new ChoiceText();
    const prompt = shape.echo?.(index);
    if (prompt) state.add(prompt, undefined);
    return { text: state, outcome: undefined as Outcome | undefined };
  });
  for await (const { index, event } of events) {
    const state = states[index];
    if (!state) throw new InternalError(`an event for choice ${index} of ${count}`);
    if (event.type === "text") state.text.add(event.text, event.logprobs);
    else if (event.type === "done") state.outcome = event.outcome;
  }
  const outcomes = new Map<number, Outcome>();
  const choices = states.map(({ text, outcome }, index): CompletionChoice => {
    if (!outcome) throw new InternalError("the engine ended a stream without a done event");
    outcomes.set(index, outcome);
    return { index, text: text.text, logprobs: shape.logprobs ? text.logprobs : null, finish_reason: finishReason(outcome) };
  });
  return { ...head, object: "text_completion", choices, usage: toWireUsage(outcomes, shape.n) };
}
