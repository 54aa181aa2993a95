import { formatDuration } from "./format.js";
import type { ServerApi } from "./http-client.js";
import type { Output } from "./pull-progress.js";
import type { ChatLine } from "./wire.js";

/** How `ai-server run` asks for and shows answers. */
export interface ChatSettings {
  model: string;
  /** `--format json`. */
  format?: string;
  /** `--think`: ask for the model's thinking (shown dimmed before the answer). */
  think?: boolean;
  /** `--verbose`: timings and token rates after each answer. */
  verbose: boolean;
  /** Wrap words at the terminal's width (`--nowordwrap` turns it off; never done when output is not a terminal). */
  wordWrap: boolean;
}

export interface ChatMessage {
  role: "system" | "user" | "assistant";
  content: string;
}

/** Where an answer goes: the text to `out`, the `--verbose` statistics to `err` (as ollama does). */
export interface ReplyIo {
  out: Output & { columns?: number };
  err: Output;
}

/**
 * Streams one answer to `messages` (POST /api/chat) onto `io.out` as it arrives: thinking first (dimmed on a
 * terminal), then the answer, word-wrapped on a terminal. Aborting `signal` stops the request (the server stops
 * generating) and rejects. Resolves to the answer as an assistant message (the text ends where the answer ends: no
 * newline is added).
 */
export async function streamReply(api: ServerApi, settings: ChatSettings, messages: ChatMessage[], io: ReplyIo, signal: AbortSignal): Promise<ChatMessage> {
  const body = {
    model: settings.model,
    messages,
    stream: true,
    ...(settings.format !== undefined && { format: settings.format }),
    ...(settings.think && { think: true }),
  };
  const terminal = io.out.isTTY === true;
  const wrap = new WordWrap(terminal && settings.wordWrap ? (io.out.columns ?? 80) : 0, (text) => io.out.write(text));
  let content = "";
  let thinking = false;
  let done: ChatLine | undefined;
  for await (const line of api.ndjson<ChatLine>("/api/chat", body, signal)) {
    const thought = line.message?.thinking ?? "";
    if (thought !== "") {
      if (!thinking) io.out.write(terminal ? "\x1b[2mThinking...\n" : "Thinking...\n");
      thinking = true;
      wrap.write(thought);
    }
    const text = line.message?.content ?? "";
    if (text !== "") {
      if (thinking) {
        wrap.end();
        io.out.write(terminal ? "\n...done thinking.\x1b[0m\n\n" : "\n...done thinking.\n\n");
        thinking = false;
      }
      content += text;
      wrap.write(text);
    }
    if (line.done) done = line;
  }
  wrap.end();
  if (thinking) io.out.write(terminal ? "\x1b[0m" : "");
  if (settings.verbose && done) io.err.write(stats(done));
  return { role: "assistant", content };
}

/** ollama's `--verbose` lines, from an answer's final chunk. */
export function stats(done: ChatLine): string {
  const rate = (count: number | undefined, ns: number | undefined): string => (count && ns ? `${((count * 1e9) / ns).toFixed(2)} tokens/s` : "-");
  const rows: Array<[string, string]> = [
    ["total duration", formatDuration(done.total_duration ?? 0)],
    ["load duration", formatDuration(done.load_duration ?? 0)],
    ["prompt eval count", `${done.prompt_eval_count ?? 0} token(s)`],
    ["prompt eval duration", formatDuration(done.prompt_eval_duration ?? 0)],
    ["prompt eval rate", rate(done.prompt_eval_count, done.prompt_eval_duration)],
    ["eval count", `${done.eval_count ?? 0} token(s)`],
    ["eval duration", formatDuration(done.eval_duration ?? 0)],
    ["eval rate", rate(done.eval_count, done.eval_duration)],
  ];
  return rows.map(([key, value]) => `${`${key}:`.padEnd(22)}${value}`).join("\n") + "\n";
}

/**
 * Streams text through, breaking lines at spaces so that no word is cut at the right edge of a `width`-column
 * terminal (0: no wrapping). A word, and the spaces before it, are held back until the word ends, so that the word
 * can move whole to the next line (the spaces then give way to the line break).
 */
export class WordWrap {
  private column = 0;
  private spaces = 0;
  private word = "";

  constructor(private readonly width: number, private readonly emit: (text: string) => void) {}

  write(text: string): void {
    if (this.width <= 0) {
      this.emit(text);
      return;
    }
    let out = "";
    for (const char of text) {
      if (char === "\n") {
        out += this.takeWord() + "\n";
        this.column = 0;
        this.spaces = 0;
      } else if (char === " ") {
        out += this.takeWord();
        this.spaces++;
      } else {
        this.word += char;
        if (this.column > 0 && this.column + this.spaces + this.word.length >= this.width) {
          out += "\n";
          this.column = 0;
          this.spaces = 0;
        }
      }
    }
    if (out !== "") this.emit(out);
  }

  /** Writes out the word held back. */
  end(): void {
    const rest = this.takeWord();
    if (rest !== "") this.emit(rest);
  }

  private takeWord(): string {
    if (this.word === "") return "";
    const text = " ".repeat(this.spaces) + this.word;
    this.column += text.length;
    this.spaces = 0;
    this.word = "";
    return text;
  }
}
