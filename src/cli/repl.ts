import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { createInterface, type Interface } from "node:readline";
import type { ServerApi } from "./http-client.js";
import { streamReply, type ChatMessage, type ChatSettings } from "./reply.js";
import { showInfo } from "./show.js";
import type { Output } from "./pull-progress.js";
import type { ShowResponse } from "./wire.js";

/** Lines of input history kept in the history file. */
export const HISTORY_LINES = 500;

export interface ReplOptions {
  api: ServerApi;
  settings: ChatSettings;
  input: NodeJS.ReadableStream;
  /** Prompts and answers. */
  output: Output & { columns?: number };
  /** Errors and `--verbose` statistics. */
  errorOutput: Output;
  /** Line editing, history and Ctrl-C as keys (a TTY); otherwise lines are read as they come. */
  terminal: boolean;
  /** Where input history persists between sessions (terminal only). */
  historyFile?: string;
}

const HELP = `Available Commands:
  /set system <text>   Set the system message
  /set verbose         Show statistics after each answer
  /set quiet           Stop showing statistics
  /show info           Show details for this model
  /clear               Forget the conversation
  /bye                 Exit
  /?, /help            Help for a command

Use """ to begin and end a multi-line message.
`;

/**
 * `ai-server run`'s interactive chat, like ollama's: `>>> ` prompts, streamed answers, the conversation kept as
 * messages, multi-line input between `"""` and `"""`, commands (`/bye`, `/clear`, `/set system …`, `/show info`,
 * `/?`), history. Ctrl-C during an answer stops that answer only (the server stops generating) and the unanswered
 * question is dropped; at an empty prompt it says how to leave. Ctrl-D (end of input) leaves.
 */
export class Repl {
  private conversation: ChatMessage[] = [];
  private system: string | undefined;
  private multiline: string[] | undefined;
  private answering: AbortController | undefined;
  private readline: Interface | undefined;

  constructor(private readonly options: ReplOptions) {}

  /** The conversation so far (without the system message). */
  get messages(): readonly ChatMessage[] {
    return this.conversation;
  }

  /** Runs until `/bye` or the end of input. */
  async run(): Promise<void> {
    const { input, output, terminal, historyFile } = this.options;
    const history = terminal && historyFile ? await loadHistory(historyFile) : [];
    const rl = createInterface({ input, output, terminal, history, historySize: HISTORY_LINES, removeHistoryDuplicates: false, prompt: ">>> " });
    this.readline = rl;
    let latest = history;
    rl.on("history", (lines: string[]) => (latest = lines));
    // On a terminal Ctrl-C is a key readline reports; otherwise it is the signal.
    const interrupt = (): void => this.interrupt();
    if (terminal) rl.on("SIGINT", interrupt);
    else process.on("SIGINT", interrupt);
    let bye = false;
    try {
      rl.prompt();
      for await (const line of rl) {
        if ((bye = await this.handle(line))) break;
        rl.setPrompt(this.multiline ? "... " : ">>> ");
        rl.prompt();
      }
      if (!bye && terminal) output.write("\n"); // Ctrl-D leaves the cursor after the prompt
    } finally {
      process.off("SIGINT", interrupt);
      rl.close();
      this.readline = undefined;
      if (terminal && historyFile) await saveHistory(historyFile, latest);
    }
  }

  /** Ctrl-C: stops the answer being written, else drops the line being typed, else says how to leave. */
  interrupt(): void {
    const rl = this.readline;
    if (this.answering) {
      this.answering.abort();
      return;
    }
    if (this.multiline || (rl && rl.line !== "")) {
      this.multiline = undefined;
      if (rl) {
        rl.write(null, { ctrl: true, name: "e" });
        rl.write(null, { ctrl: true, name: "u" });
      }
      this.options.output.write("\n");
    } else this.options.output.write("\nUse Ctrl + d or /bye to exit.\n");
    rl?.setPrompt(">>> ");
    rl?.prompt();
  }

  /** One line of input; true when the session ends. */
  private async handle(line: string): Promise<boolean> {
    if (this.multiline) {
      const closing = line.trimEnd().endsWith('"""');
      const text = closing ? line.trimEnd().slice(0, -3) : line;
      if (!closing || text !== "") this.multiline.push(text);
      if (!closing) return false;
      const message = this.multiline.join("\n");
      this.multiline = undefined;
      if (message.trim() !== "") await this.ask(message);
      return false;
    }
    const trimmed = line.trim();
    if (trimmed.startsWith('"""')) {
      const rest = trimmed.slice(3);
      if (rest.length >= 3 && rest.endsWith('"""')) await this.ask(rest.slice(0, -3));
      else this.multiline = rest === "" ? [] : [rest];
      return false;
    }
    if (trimmed === "") return false;
    if (trimmed.startsWith("/")) return this.command(trimmed);
    await this.ask(line);
    return false;
  }

  private async command(text: string): Promise<boolean> {
    const [word = "", ...args] = text.split(/\s+/);
    const say = (line: string): boolean => {
      this.options.output.write(`${line}\n`);
      return false;
    };
    switch (word) {
      case "/bye":
        return true;
      case "/clear":
        this.conversation = [];
        return say("Cleared session context");
      case "/?":
      case "/help":
        return say(HELP);
      case "/set":
        return say(this.set(args[0] ?? "", text.replace(/^\/set\s+\S+\s*/, "")));
      case "/show":
        if (args[0] !== "info") return say(`Unknown command '/show ${args[0] ?? ""}'. Type /? for help`);
        try {
          const show = await this.options.api.json<ShowResponse>("POST", "/api/show", { model: this.options.settings.model });
          return say(showInfo(show, false));
        } catch (error) {
          this.options.errorOutput.write(`Error: ${error instanceof Error ? error.message : String(error)}\n`);
          return false;
        }
      default:
        return say(`Unknown command '${word}'. Type /? for help`);
    }
  }

  private set(what: string, value: string): string {
    switch (what) {
      case "system": {
        const system = value.replace(/^"(.*)"$/s, "$1");
        this.system = system === "" ? undefined : system;
        return this.system === undefined ? "Cleared system message." : "Set system message.";
      }
      case "verbose":
      case "quiet":
        this.options.settings.verbose = what === "verbose";
        return `Set '${what}' mode.`;
      default:
        return `Unknown command '/set ${what}'. Type /? for help`;
    }
  }

  /** Sends the conversation with `text` as the next user message and streams the answer. */
  private async ask(text: string): Promise<void> {
    const { api, settings, output, errorOutput } = this.options;
    const question: ChatMessage = { role: "user", content: text };
    const messages = [...(this.system !== undefined ? [{ role: "system" as const, content: this.system }] : []), ...this.conversation, question];
    const answering = new AbortController();
    this.answering = answering;
    try {
      const answer = await streamReply(api, settings, messages, { out: output, err: errorOutput }, answering.signal);
      this.conversation.push(question, answer);
      output.write(answer.content.endsWith("\n") ? "\n" : "\n\n");
    } catch (error) {
      if (answering.signal.aborted) output.write("\n\n");
      else errorOutput.write(`Error: ${error instanceof Error ? error.message : String(error)}\n`);
    } finally {
      this.answering = undefined;
    }
  }
}

/** The history file's lines, newest first as readline wants them. */
async function loadHistory(file: string): Promise<string[]> {
  try {
    const lines = (await readFile(file, "utf8")).split("\n").filter((line) => line !== "");
    return lines.slice(-HISTORY_LINES).reverse();
  } catch {
    return [];
  }
}

/** Writes readline's history (newest first) oldest first, the last HISTORY_LINES lines. */
async function saveHistory(file: string, history: readonly string[]): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, history.slice(0, HISTORY_LINES).reverse().join("\n") + (history.length > 0 ? "\n" : ""));
}
