import path from "node:path";
import { loadConfig } from "../config/load.js";
import { connectOrStart, type Connection } from "./connection.js";
import { ApiError } from "./http-client.js";
import { pullModel } from "./pull.js";
import { Repl } from "./repl.js";
import { streamReply, type ChatSettings } from "./reply.js";

export interface RunOptions {
  verbose?: boolean;
  think?: boolean;
  format?: string;
  nowordwrap?: boolean;
}

/**
 * `ai-server run NAME [PROMPT…]`, like `ollama run`: pulls the model first when it is missing; with a prompt (the
 * words given, after all of stdin when stdin is not a terminal) streams one answer and exits; otherwise chats.
 */
export async function runCommand(name: string, words: string[], options: RunOptions): Promise<void> {
  const settings: ChatSettings = {
    model: name,
    ...(options.format !== undefined && { format: options.format }),
    ...(options.think && { think: true }),
    verbose: options.verbose ?? false,
    wordWrap: !options.nowordwrap,
  };
  const piped = !process.stdin.isTTY ? await readAll(process.stdin) : "";
  const prompt = [piped, ...words].filter((part) => part !== "").join(" ");
  const interactive = process.stdin.isTTY === true && words.length === 0;
  if (!interactive && prompt === "") throw new Error("no prompt: give one after the model's name, or pipe one to stdin");
  const connection = await connectOrStart();
  try {
    await ensureModel(connection, name);
    if (interactive) await chat(connection, settings);
    else await answerOnce(connection, settings, prompt);
  } finally {
    await connection.close();
  }
}

/** Pulls `name` (progress on stderr, so that stdout carries only answers) unless the server has it. */
async function ensureModel(connection: Connection, name: string): Promise<void> {
  try {
    await connection.api.json("POST", "/api/show", { model: name });
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 404)) throw error;
    process.stderr.write(`model "${name}" is not here; pulling it\n`);
    await pullModel(connection, name, { exact: false, out: process.stderr });
  }
}

/**
 * One streamed answer to `prompt`, then a newline. Ctrl-C stops it and exits 130; a reader that goes away (`| head`)
 * stops it too, and the command exits 0.
 */
async function answerOnce(connection: Connection, settings: ChatSettings, prompt: string): Promise<void> {
  const controller = new AbortController();
  let readerGone = false;
  const interrupt = (): void => controller.abort();
  const outputError = (error: NodeJS.ErrnoException): void => {
    if (error.code !== "EPIPE") throw error;
    readerGone = true;
    controller.abort();
  };
  process.once("SIGINT", interrupt);
  process.stdout.on("error", outputError);
  try {
    const answer = await streamReply(connection.api, settings, [{ role: "user", content: prompt }], { out: process.stdout, err: process.stderr }, controller.signal);
    if (!answer.content.endsWith("\n")) process.stdout.write("\n");
  } catch (error) {
    if (!controller.signal.aborted) throw error;
    if (!readerGone) process.stdout.write("\n");
    await connection.close();
    process.exit(readerGone ? 0 : 130);
  } finally {
    process.off("SIGINT", interrupt);
    process.stdout.off("error", outputError);
  }
}

/**
 * The interactive chat on this terminal, after loading the model (so that a load failure shows at once). With stdout
 * redirected, lines are read without line editing.
 */
async function chat(connection: Connection, settings: ChatSettings): Promise<void> {
  await connection.api.json("POST", "/api/chat", { model: settings.model, messages: [], stream: false });
  const repl = new Repl({
    api: connection.api,
    settings,
    input: process.stdin,
    output: process.stdout,
    errorOutput: process.stderr,
    terminal: process.stdout.isTTY === true,
    historyFile: path.join(loadConfig().home, "cli-history"),
  });
  await repl.run();
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === "string" ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks).toString("utf8").trim();
}
