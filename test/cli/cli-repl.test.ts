import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { PassThrough, Writable } from "node:stream";
import { after, before, test } from "node:test";
import { ServerApi } from "../../src/cli/http-client.js";
import { HISTORY_LINES, Repl } from "../../src/cli/repl.js";
import type { ChatSettings } from "../../src/cli/reply.js";
import type { PsModel } from "../../src/cli/wire.js";
import { ensureFixtures, SCRIPTED_REPLY, TINY_MODEL, writeRandomModel } from "../fixtures/models.js";
import { createModel, startServer, type TestServer } from "../helpers/start-server.js";

// `ai-server run`'s interactive chat, driven line by line through a stream standing in for the terminal, against
// the real server with real inference on the fixture models.

let server: TestServer;
let api: ServerApi;
let scratch: string;
const ENDLESS_CONTEXT = 65536;

before(async () => {
  const fixtures = await ensureFixtures();
  scratch = await mkdtemp(path.join(os.tmpdir(), "ai-server-repl-"));
  // Random weights never produce an end token, and with a 64k context an answer runs for minutes unless stopped.
  const endless = path.join(scratch, "endless.gguf");
  await writeRandomModel(endless, { ...TINY_MODEL, contextLength: ENDLESS_CONTEXT, name: "endless" });
  server = await startServer({ config: { contextLength: ENDLESS_CONTEXT } });
  api = new ServerApi(server.baseUrl);
  await createModel(server.baseUrl, "chat", fixtures.chat);
  await createModel(server.baseUrl, "endless", endless);
});

after(async () => {
  await server.close();
  await rm(scratch, { recursive: true, force: true });
});

/** A stream that keeps what is written and calls `onWrite` with each piece. */
function sink(onWrite: (text: string) => void = () => {}): Writable & { text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(chunk.toString());
      onWrite(chunk.toString());
      done();
    },
  });
  return Object.assign(stream, { text: () => chunks.join("") });
}

const settings = (model: string): ChatSettings => ({ model, verbose: false, wordWrap: true });

/** A REPL on lines given up front (input ends after them), not a terminal. */
function replOn(lines: string[], model = "chat"): { repl: Repl; output: ReturnType<typeof sink>; errors: ReturnType<typeof sink> } {
  const input = new PassThrough();
  input.end(lines.map((line) => `${line}\n`).join(""));
  const output = sink();
  const errors = sink();
  return { repl: new Repl({ api, settings: settings(model), input, output, errorOutput: errors, terminal: false }), output, errors };
}

test("answers stream after >>> prompts and the conversation is kept as messages", async () => {
  const { repl, output, errors } = replOn(["Hi", "Tell me a story"]);
  await repl.run();
  assert.equal(errors.text(), "");
  assert.equal(output.text(), `>>> ${SCRIPTED_REPLY}\n\n>>> ${SCRIPTED_REPLY}\n\n>>> `);
  assert.deepEqual(repl.messages, [
    { role: "user", content: "Hi" },
    { role: "assistant", content: SCRIPTED_REPLY },
    { role: "user", content: "Tell me a story" },
    { role: "assistant", content: SCRIPTED_REPLY },
  ]);
});

test('text between """ and """ is one message; the prompt shows ... meanwhile', async () => {
  const { repl, output } = replOn(['"""first line', "", "second line", 'last"""', '"""inline"""']);
  await repl.run();
  assert.deepEqual(
    repl.messages.filter((m) => m.role === "user").map((m) => m.content),
    ["first line\n\nsecond line\nlast", "inline"],
  );
  assert.match(output.text(), /^>>> \.\.\. \.\.\. \.\.\. /);
});

test("/clear forgets the conversation, /bye ends the session before the lines after it", async () => {
  const { repl, output } = replOn(["Hi", "/clear", "Again", "/bye", "never sent"]);
  await repl.run();
  assert.match(output.text(), /Cleared session context/);
  assert.deepEqual(repl.messages, [
    { role: "user", content: "Again" },
    { role: "assistant", content: SCRIPTED_REPLY },
  ]);
});

test("/set system, /set verbose, /show info, /? and unknown commands", async () => {
  const { repl, output, errors } = replOn(["/set system Answer in one line.", "/set verbose", "Hi", "/show info", "/?", "/nope"]);
  await repl.run();
  const text = output.text();
  assert.match(text, /Set system message\./);
  assert.match(text, /Set 'verbose' mode\./);
  assert.match(text, /  Model\n    architecture\s+llama\n/);
  assert.match(text, /Available Commands:[\s\S]*\/bye/);
  assert.match(text, /Unknown command '\/nope'\. Type \/\? for help/);
  assert.match(errors.text(), /^total duration: .*\n[\s\S]*eval rate: +[\d.]+ tokens\/s\n$/, "verbose statistics after the answer");
  assert.deepEqual(repl.messages.map((m) => m.role), ["user", "assistant"], "the system message is sent, not kept in the conversation");
});

test("Ctrl-C during an answer stops it in the server and drops the question; the session goes on", { timeout: 60_000 }, async () => {
  const input = new PassThrough();
  let repl: Repl | undefined;
  let interrupted = false;
  const output = sink((text) => {
    // The first piece of the answer (anything but a prompt) is where the user presses Ctrl-C.
    if (!interrupted && text !== ">>> ") {
      interrupted = true;
      repl?.interrupt();
      input.end("/bye\n");
    }
  });
  const errors = sink();
  repl = new Repl({ api, settings: settings("endless"), input, output, errorOutput: errors, terminal: false });
  input.write("Tell me a story\n");
  await repl.run();
  assert.ok(interrupted);
  assert.equal(errors.text(), "");
  assert.deepEqual(repl.messages, [], "the interrupted question is not part of the conversation");
  // Left alone, the answer would run to the end of the 64k context (minutes at this model's ~500 tokens/s).
  assert.ok(await activeDropsToZero("endless:latest", 30_000), "the server stopped generating");
});

/** Whether the model's running requests (GET /api/ps) fall to 0 within `ms`. */
async function activeDropsToZero(name: string, ms: number): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await new Promise((resolve) => setTimeout(resolve, 50))) {
    const { models } = await api.json<{ models: PsModel[] }>("GET", "/api/ps");
    if (models.find((m) => m.name === name)?.active === 0) return true;
  }
  return false;
}

test("Ctrl-C at an empty prompt says how to leave; the end of input (Ctrl-D) leaves", async () => {
  const input = new PassThrough();
  const output = sink();
  const repl = new Repl({ api, settings: settings("chat"), input, output, errorOutput: sink(), terminal: false });
  const running = repl.run();
  repl.interrupt();
  input.end();
  await running;
  assert.equal(output.text(), ">>> \nUse Ctrl + d or /bye to exit.\n>>> ");
});

test("an error answer is shown and the session goes on", async () => {
  const { repl, errors } = replOn(["Hi"], "missing-model");
  await repl.run();
  assert.match(errors.text(), /^Error: model "missing-model" not found/);
  assert.deepEqual(repl.messages, []);
});

test(`on a terminal, input history persists in the history file, the last ${HISTORY_LINES} lines`, async () => {
  const historyFile = path.join(scratch, "cli-history");
  await writeFile(historyFile, Array.from({ length: 600 }, (_, i) => `line ${i + 1}`).join("\n") + "\n");
  const input = new PassThrough();
  const repl = new Repl({ api, settings: settings("chat"), input, output: sink(), errorOutput: sink(), terminal: true, historyFile });
  const running = repl.run();
  input.write("/clear\r");
  input.write("/bye\r");
  await running;
  const lines = (await readFile(historyFile, "utf8")).split("\n");
  assert.equal(lines.pop(), "");
  assert.equal(lines.length, HISTORY_LINES);
  assert.deepEqual(lines.slice(0, 1), ["line 103"]);
  assert.deepEqual(lines.slice(-3), ["line 600", "/clear", "/bye"]);
});
