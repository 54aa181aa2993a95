/**
 * The markers of reasoning in plain generated text, for /completion, where llama-server does not parse the answer:
 * `<think>` (Qwen3, DeepSeek-R1, QwQ, GLM, MiniMax, SmolLM3, …), `[THINK]` (Magistral), `<seed:think>` (Seed-OSS) and
 * `<|START_THINKING|>` (Command A). Sent as `preserved_tokens`, so that where a marker is a special token it is written
 * out too. Formats without such a pair (gpt-oss's channels) are not split on this route.
 */
export const THINKING_MARKERS: ReadonlyArray<readonly [open: string, close: string]> = [
  ["<think>", "</think>"],
  ["[THINK]", "[/THINK]"],
  ["<seed:think>", "</seed:think>"],
  ["<|START_THINKING|>", "<|END_THINKING|>"],
];

/** A piece of output: reasoning, or the answer's text. */
export interface OutputPart {
  type: "thinking" | "text";
  text: string;
}

type State = { kind: "start" } | { kind: "thinking"; close: string } | { kind: "answer"; trimStart: boolean };

/**
 * Splits a streamed completion into reasoning and answer by the markers above. The prompt decides where it starts:
 * a prompt that ends with an opening marker (a template that opens the think block itself) starts in the reasoning,
 * one that ends with a closing marker (thinking switched off: an empty think block) in the answer; otherwise an
 * opening marker at the very start of the output (after whitespace) opens the reasoning. Text that may be the start
 * of a marker is held back until it is known. Whitespace next to the markers is dropped, as llama.cpp's parser does.
 */
export class ThinkingSplitter {
  private state: State;
  private held = "";

  constructor(prompt: string) {
    const end = prompt.trimEnd();
    const opened = THINKING_MARKERS.find(([open]) => end.endsWith(open));
    const closed = THINKING_MARKERS.some(([, close]) => end.endsWith(close));
    this.state = opened ? { kind: "thinking", close: opened[1] } : closed ? { kind: "answer", trimStart: true } : { kind: "start" };
  }

  /** Whether the output is (so far) inside the reasoning. */
  get thinking(): boolean {
    return this.state.kind === "thinking";
  }

  /** The parts `text` completes (possibly none while a marker may be forming). */
  push(text: string): OutputPart[] {
    this.held += text;
    const parts: OutputPart[] = [];
    for (;;) {
      const before = this.held.length;
      const kind = this.state.kind;
      this.step(parts);
      if (this.held.length === before && this.state.kind === kind) return parts;
    }
  }

  /** What is still held back, once the output has ended. */
  end(): OutputPart[] {
    const rest = this.held;
    this.held = "";
    if (rest === "") return [];
    if (this.state.kind === "thinking") return [{ type: "thinking", text: rest }];
    const text = this.state.kind === "answer" && this.state.trimStart ? rest.trimStart() : rest;
    return text === "" ? [] : [{ type: "text", text }];
  }

  private step(parts: OutputPart[]): void {
    const state = this.state;
    if (state.kind === "start") {
      const text = this.held.trimStart();
      if (text === "") return;
      const marker = THINKING_MARKERS.find(([open]) => text.startsWith(open));
      if (marker) {
        this.held = text.slice(marker[0].length);
        this.state = { kind: "thinking", close: marker[1] };
      } else if (!THINKING_MARKERS.some(([open]) => open.startsWith(text))) {
        this.state = { kind: "answer", trimStart: false };
      }
      return;
    }
    if (state.kind === "thinking") {
      const at = this.held.indexOf(state.close);
      if (at !== -1) {
        if (at > 0) parts.push({ type: "thinking", text: this.held.slice(0, at) });
        this.held = this.held.slice(at + state.close.length);
        this.state = { kind: "answer", trimStart: true };
        return;
      }
      const keep = partialSuffix(this.held, state.close);
      if (this.held.length > keep) parts.push({ type: "thinking", text: this.held.slice(0, this.held.length - keep) });
      this.held = this.held.slice(this.held.length - keep);
      return;
    }
    let text = this.held;
    if (state.trimStart) {
      text = text.trimStart();
      if (text === "") {
        this.held = "";
        return;
      }
      this.state = { kind: "answer", trimStart: false };
    }
    this.held = "";
    if (text !== "") parts.push({ type: "text", text });
  }
}

/** Length of the longest end of `text` that is the start of `marker` (0 when none). */
function partialSuffix(text: string, marker: string): number {
  for (let n = Math.min(text.length, marker.length - 1); n > 0; n--) if (marker.startsWith(text.slice(text.length - n))) return n;
  return 0;
}
