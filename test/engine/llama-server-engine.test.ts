/**
 * The out-of-process engine: a real llama.cpp llama-server (built by scripts/build-llama-server.mjs from the source
 * node-llama-cpp ships; about 2 minutes the first time, then reused) serving the scripted fixture models over a
 * UNIX socket, one thread each: loading, processes, errors and the app. A scripted stand-in on a socket checks the
 * tool-call wire format both ways; tool calls on real models (Qwen-format fixtures), reasoning, log-probabilities,
 * rerank, tokenize and the context limits are in llama-server-features.test.ts.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, rm, stat, writeFile } from "node:fs/promises";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Ollama, type ChatResponse } from "ollama";
import type { CompletionRequest } from "../../src/domain/chat.js";
import { ContextOverflowError, EngineCrashedError, InvalidModelFileError, ModelLoadError, RequestCancelledError, StructuredOutputError } from "../../src/domain/errors.js";
import type { GenerationEvent } from "../../src/domain/generation.js";
import type { LoadSpec } from "../../src/engine/engine.js";
import { ServerClient } from "../../src/engine/llama-server/client.js";
import { runGeneration } from "../../src/engine/llama-server/generation.js";
import { LlamaServerEngine } from "../../src/engine/llama-server/llama-server-engine.js";
import { ProcessRegistry } from "../../src/engine/llama-server/process-registry.js";
import { toOaiMessages, toOaiTools } from "../../src/engine/llama-server/request-body.js";
import type { LlamaServerModel } from "../../src/engine/llama-server/loaded-model.js";
import { ensureFixtures, INVALID_UTF8_MODEL, INVALID_UTF8_TEXT, JSON_REPLY, SCRIPTED_REPLY, splitReply, writeScriptedModel, type FixturePaths } from "../fixtures/models.js";
import { buildLlamaServer } from "../helpers/llama-server-binary.js";
import { createModel, postJson, startServer, type TestServer } from "../helpers/start-server.js";
import { chatRequest, collect } from "../helpers/engine-events.js";

let binary: string;
let engine: LlamaServerEngine;
let fixtures: FixturePaths;
let chat: LlamaServerModel;
const never = new AbortController().signal;

before(async () => {
  binary = buildLlamaServer();
  fixtures = await ensureFixtures();
  engine = new LlamaServerEngine({ binary, gpu: "off" });
  chat = (await engine.load(spec(fixtures.chat, { slots: 2 }))) as LlamaServerModel;
});

after(async () => {
  await chat?.unload();
  await engine?.close();
});

function spec(modelPath: string, overrides: Partial<LoadSpec> = {}): LoadSpec {
  return { modelPath, contextSize: 1024, slots: 1, threads: 1, ...overrides };
}

function completion(overrides: Partial<CompletionRequest> = {}): CompletionRequest {
  return { prompt: "hi", raw: false, format: { type: "text" }, sampling: { temperature: 0 }, ...overrides };
}

function isAlive(pid: number | undefined): boolean {
  if (pid === undefined) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test("chat streams the exact scripted reply in pieces, then one done event with usage from llama-server's timings", async () => {
  const { text, events } = await collect(chat.chat(chatRequest(), never));
  assert.equal(text, SCRIPTED_REPLY);
  assert.ok(events.filter((e) => e.type === "text").length > 2, "streamed in several events");
  assert.equal(events.filter((e) => e.type === "done").length, 1);
  const done = events.at(-1);
  assert.ok(done?.type === "done" && done.reason === "stop");
  assert.ok(done.usage.promptTokens > 0 && done.usage.evalDurationNs > 0);
  assert.equal(done.usage.completionTokens, splitReply(SCRIPTED_REPLY).length + 1, "the reply's tokens and the end token, as Ollama counts");
});

test("stop sequences end the reply before them; max tokens ends with reason length; two slots run at once", async () => {
  const [stopped, limited, sampled] = await Promise.all([
    collect(chat.chat(chatRequest({ sampling: { temperature: 0, stop: [" scripted"] } }), never)),
    collect(chat.chat(chatRequest({ sampling: { temperature: 0, maxTokens: 2 } }), never)),
    collect(chat.chat(chatRequest({ sampling: { temperature: 0.8, seed: 7 } }), never)),
  ]);
  assert.equal(stopped.text, SCRIPTED_REPLY.slice(0, SCRIPTED_REPLY.indexOf(" scripted")));
  assert.ok(stopped.events.at(-1)?.type === "done");
  assert.ok(SCRIPTED_REPLY.startsWith(limited.text) && limited.text.length < SCRIPTED_REPLY.length);
  const last = limited.events.at(-1);
  assert.ok(last?.type === "done" && last.reason === "length");
  assert.equal(sampled.text, SCRIPTED_REPLY);
});

test("a templated completion returns its context tokens and accepts them back; a raw one returns none", async () => {
  const templated = await collect(chat.complete(completion(), never));
  assert.equal(templated.text, SCRIPTED_REPLY);
  const done = templated.events.at(-1);
  assert.ok(done?.type === "done" && Array.isArray(done.context) && done.context.length > 0);
  const followUp = await collect(chat.complete(completion({ prompt: "again", context: done.context }), never));
  assert.equal(followUp.text, SCRIPTED_REPLY);
  const raw = await collect(chat.complete(completion({ raw: true }), never));
  const rawDone = raw.events.at(-1);
  assert.ok(rawDone?.type === "done" && rawDone.context === undefined);
});

test("output bytes that are not UTF-8 arrive as U+FFFD instead of failing the request (chat, templated and raw)", async () => {
  // llama.cpp's chat parser, which llama-server runs on every answer, fails on them ("does not match the expected
  // Content-only format"); scripts/llama-server-patches/replace-invalid-utf8.diff replaces them as they are generated.
  const file = path.join(os.tmpdir(), `ai-server-ls-utf8-${process.pid}.gguf`);
  await writeScriptedModel(file, INVALID_UTF8_MODEL);
  const model = await engine.load(spec(file, { contextSize: 256 }));
  try {
    const answers = [
      await collect(model.chat(chatRequest(), never)),
      await collect(model.complete(completion(), never)),
      await collect(model.complete(completion({ raw: true }), never)),
    ];
    for (const { text, events } of answers) {
      assert.equal(text, INVALID_UTF8_TEXT);
      const done = events.at(-1);
      assert.ok(done?.type === "done" && done.reason === "stop");
    }
  } finally {
    await model.unload();
    await rm(file, { force: true });
  }
});

test("input longer than the context is a context overflow", async () => {
  await assert.rejects(collect(chat.chat(chatRequest({ messages: [{ role: "user", content: "hi ".repeat(1500) }] }), never)), ContextOverflowError);
});

test("JSON-schema and JSON output are constrained by llama.cpp's grammar and validated; output that breaks the schema is refused", async () => {
  const json = await engine.load(spec(fixtures.json));
  try {
    const schema = { type: "object", properties: { name: { type: "string" }, age: { type: "integer" } }, required: ["name", "age"] };
    const ok = await collect(json.chat(chatRequest({ format: { type: "json_schema", schema } }), never));
    assert.deepEqual(JSON.parse(ok.text), JSON.parse(JSON_REPLY));
    const anyJson = await collect(json.chat(chatRequest({ format: { type: "json" } }), never));
    assert.deepEqual(JSON.parse(anyJson.text), JSON.parse(JSON_REPLY));
    // llama.cpp's grammar does not enforce multipleOf; the model says 36, which must not be returned as valid.
    const strict = { ...schema, properties: { ...schema.properties, age: { type: "integer", multipleOf: 5 } } };
    await assert.rejects(collect(json.chat(chatRequest({ format: { type: "json_schema", schema: strict } }), never)), StructuredOutputError);
  } finally {
    await json.unload();
  }
});

test("embeddings come from a second process, L2-normalised, cut to dimensions; too long inputs fail unless truncated", async () => {
  const result = await chat.embed({ inputs: ["hello", "world"], truncate: true }, never);
  assert.equal(result.embeddings.length, 2);
  for (const vector of result.embeddings) assert.ok(Math.abs(Math.hypot(...vector) - 1) < 1e-5);
  assert.ok(result.promptTokens > 0);
  const cut = await chat.embed({ inputs: ["hello"], truncate: true, dimensions: 8 }, never);
  assert.equal(cut.embeddings[0]?.length, 8);
  assert.ok(Math.abs(Math.hypot(...(cut.embeddings[0] ?? [])) - 1) < 1e-5);
  const long = "hello ".repeat(1500);
  await assert.rejects(chat.embed({ inputs: [long], truncate: false }, never), ContextOverflowError);
  const truncated = await chat.embed({ inputs: [long], truncate: true }, never);
  assert.equal(truncated.promptTokens, 1024);
  assert.ok(isAlive(chat.embeddingProcess?.pid) && chat.embeddingProcess?.pid !== chat.server.pid);
  assert.ok(chat.memory.ram > chat.server.rssBytes(), "memory counts both processes");
});

test("aborting stops the generation early, and llama-server stops the task", async () => {
  const tiny = (await engine.load(spec(fixtures.tiny, { contextSize: 2048 }))) as LlamaServerModel;
  try {
    // The random model never emits an end token: unstopped, it would fill the 2048-token context.
    const long = completion({ raw: true, prompt: "hello", sampling: { temperature: 0 } });
    const controller = new AbortController();
    const events: GenerationEvent[] = [];
    for await (const event of tiny.complete(long, controller.signal)) {
      events.push(event);
      if (events.length === 3) controller.abort();
    }
    const done = events.at(-1);
    assert.ok(done?.type === "done" && done.usage.completionTokens < 100, `stopped early: ${JSON.stringify(done)}`);
    const deadline = Date.now() + 2000;
    for (;;) {
      const slots = await tiny.server.client.post<{ is_processing: boolean }[]>("/slots", undefined);
      if (slots.every((slot) => !slot.is_processing)) break;
      assert.ok(Date.now() < deadline, "llama-server still generates after the abort");
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const aborted = new AbortController();
    aborted.abort();
    await assert.rejects(collect(tiny.complete(long, aborted.signal)), RequestCancelledError);
  } finally {
    await tiny.unload();
  }
});

test("unload ends both processes and removes their sockets; it is safe twice", async () => {
  const model = (await engine.load(spec(fixtures.chat))) as LlamaServerModel;
  await model.embed({ inputs: ["hello"], truncate: true }, never);
  const pids = [model.server.pid, model.embeddingProcess?.pid];
  const sockets = [model.server.socketPath, model.embeddingProcess?.socketPath ?? ""];
  assert.ok(pids.every(isAlive) && sockets.every((s) => existsSync(s)));
  await model.unload();
  await model.unload();
  assert.ok(!pids.some(isAlive), "processes gone");
  assert.ok(!sockets.some((s) => existsSync(s)), "sockets removed");
});

test("a crashed process (kill -9) turns the next requests into a clear error instead of a hang", async () => {
  const model = (await engine.load(spec(fixtures.chat))) as LlamaServerModel;
  try {
    process.kill(model.server.pid ?? 0, "SIGKILL");
    const started = Date.now();
    await assert.rejects(collect(model.chat(chatRequest(), never)), (error: unknown) => error instanceof EngineCrashedError && /SIGKILL/.test(error.message));
    await assert.rejects(collect(model.complete(completion(), never)), EngineCrashedError);
    assert.ok(Date.now() - started < 5000);
    assert.ok(isAlive(chat.server.pid), "other models keep running");
  } finally {
    await model.unload();
  }
});

test("processes left running by a server that was killed are reaped by the next one; other programs' pids are not", async () => {
  const stateDir = await mkdtemp(path.join(os.tmpdir(), "ai-server-ls-state-"));
  const first = new LlamaServerEngine({ binary, gpu: "off", stateDir });
  const orphan = (await first.load(spec(fixtures.chat))) as LlamaServerModel;
  // A record whose pid runs another program (this test process): it must survive.
  await writeFile(path.join(stateDir, `${process.pid}.json`), JSON.stringify({ pid: process.pid, binary, socketPath: path.join(stateDir, "x.sock") }));
  try {
    // As if `first`'s server had been SIGKILLed: the next server's start-up reaps the records.
    assert.deepEqual(await new ProcessRegistry(stateDir).reap(), [orphan.server.pid]);
    await orphan.server.exited;
    assert.ok(!isAlive(orphan.server.pid), "the orphan is gone");
    assert.ok(!existsSync(orphan.server.socketPath), "its socket is removed");
    assert.deepEqual(await readdir(stateDir), [], "the records are gone");
  } finally {
    await orphan.unload();
    await first.close();
    await rm(stateDir, { recursive: true, force: true });
  }
});

test("a server started with the in-process engine also stops the llama-servers a killed server left running", async () => {
  const home = await mkdtemp(path.join(os.tmpdir(), "ai-server-ls-home-"));
  const first = new LlamaServerEngine({ binary, gpu: "off", stateDir: path.join(home, "run", "llama-server") });
  const orphan = (await first.load(spec(fixtures.chat))) as LlamaServerModel;
  try {
    // As if `first`'s server had been SIGKILLed, and the user restarted with AI_SERVER_ENGINE=llama-cpp.
    const server = await startServer({ config: { home, engine: "llama-cpp", llamaServer: binary, gpu: "off" } });
    try {
      assert.equal(server.app.services.engine, "llama-cpp");
      await Promise.race([orphan.server.exited, sleep(5000)]);
      assert.ok(!isAlive(orphan.server.pid), "the orphan is gone at start-up");
    } finally {
      await server.close();
    }
  } finally {
    await orphan.unload();
    await first.close();
    await rm(home, { recursive: true, force: true });
  }
});

test("loads fail cleanly: missing binary, a binary that exits, a hostile GGUF, an aborted load", async () => {
  const missing = new LlamaServerEngine({ binary: path.join(os.tmpdir(), "no-such-llama-server"), gpu: "off" });
  await assert.rejects(missing.load(spec(fixtures.chat)), (error: unknown) => error instanceof ModelLoadError && /could not be started/.test(error.message));
  const exits = new LlamaServerEngine({ binary: "/bin/false", gpu: "off" });
  await assert.rejects(exits.load(spec(fixtures.chat)), (error: unknown) => error instanceof ModelLoadError && /exited with code 1/.test(error.message));
  await Promise.all([missing.close(), exits.close()]);
  const hostile = path.join(os.tmpdir(), `ai-server-hostile-ls-${process.pid}.gguf`);
  const header = Buffer.alloc(24);
  header.write("GGUF", 0, "latin1");
  header.writeUInt32LE(3, 4);
  header.writeBigUInt64LE(0xffffffffffn, 8); // a trillion tensors in a 24-byte file
  await writeFile(hostile, header);
  await assert.rejects(engine.load(spec(hostile)), InvalidModelFileError);
  const aborted = new AbortController();
  aborted.abort();
  await assert.rejects(engine.load(spec(fixtures.chat), aborted.signal), RequestCancelledError);
  const estimate = await engine.estimateMemory(spec(fixtures.chat));
  // The weights and the 64 MiB prompt cache llama-server keeps in RAM (-cram) at least.
  assert.ok(estimate.ram >= (await stat(fixtures.chat)).size + 64 * 1024 * 1024, `estimate ${estimate.ram}`);
});

test("speculative decoding (draft model, prompt lookup) keeps the output and counts llama-server's drafted and accepted tokens", async () => {
  for (const speculative of [{ type: "draft" as const, modelPath: fixtures.chat }, { type: "lookup" as const }]) {
    const model = await engine.load(spec(fixtures.chat, { speculative }));
    try {
      const echo = chatRequest({ messages: [{ role: "user", content: `${SCRIPTED_REPLY} ${SCRIPTED_REPLY}` }] });
      for (const r of [chatRequest(), echo]) assert.equal((await collect(model.chat(r, never))).text, SCRIPTED_REPLY);
      const { drafted, accepted } = model.stats().speculative;
      assert.ok(drafted > 0 && accepted > 0 && accepted <= drafted, `${speculative.type}: ${drafted} drafted, ${accepted} accepted`);
    } finally {
      await model.unload();
    }
  }
});

/** The real app with AI_SERVER_ENGINE=llama-server (the binary as given) and the scripted model as "scripted". */
async function startScripted(llamaServer: string): Promise<TestServer> {
  const server = await startServer({ config: { engine: "llama-server", llamaServer, gpu: "off", contextLength: 1024 } });
  await createModel(server.baseUrl, "scripted", fixtures.chat);
  return server;
}

/** `model`'s answer to "Hi" at temperature 0, through the ollama client. */
async function sayHi(server: TestServer, model: string): Promise<ChatResponse> {
  return new Ollama({ host: server.baseUrl }).chat({ model, messages: [{ role: "user", content: "Hi" }], options: { temperature: 0 } });
}

test("the real app with AI_SERVER_ENGINE=llama-server answers /api/chat through the ollama client", async () => {
  const server = await startScripted(binary);
  try {
    const ollama = new Ollama({ host: server.baseUrl });
    const response = await sayHi(server, "scripted");
    assert.equal(response.message.content, SCRIPTED_REPLY);
    assert.equal(response.done_reason, "stop");
    const parts = [];
    for await (const part of await ollama.chat({ model: "scripted", messages: [{ role: "user", content: "Hi" }], stream: true })) parts.push(part);
    assert.equal(parts.map((p) => p.message.content).join(""), SCRIPTED_REPLY);
    const ps = await ollama.ps();
    assert.equal(ps.models[0]?.name, "scripted:latest");
    assert.ok((ps.models[0]?.size ?? 0) > 0);
  } finally {
    await server.close();
  }
});

test("a model's engine parameter picks its engine: one model in process and one in llama-server on the same server", async () => {
  const server = await startScripted(binary);
  try {
    assert.equal((await postJson(server.baseUrl, "/api/create", { model: "scripted-local", from: "scripted", parameters: { engine: "llama-cpp" }, stream: false })).status, 200);
    // Both names share one blob, so one instance: each request loads it with the engine its model names.
    for (const [model, engine, processes] of [["scripted", "llama-server", 1], ["scripted-local", "llama-cpp", 0]] as const) {
      assert.equal((await sayHi(server, model)).message.content, SCRIPTED_REPLY, model);
      const ps = (await (await fetch(`${server.baseUrl}/api/ps`)).json()) as { models: { name: string; engine: string }[] };
      assert.deepEqual(ps.models.map((m) => [m.name, m.engine]), [[`${model}:latest`, engine]]);
      assert.equal((await readdir(path.join(server.home, "run", "llama-server"))).length, processes, `llama-server processes running for ${model}`);
    }
    const show = (await (await postJson(server.baseUrl, "/api/show", { model: "scripted-local" })).json()) as { parameters?: string };
    assert.match(show.parameters ?? "", /engine\s+"?llama-cpp/);
    const unknown = await postJson(server.baseUrl, "/api/create", { model: "bad-engine", from: "scripted", parameters: { engine: "vllm" }, stream: false });
    assert.equal(unknown.status, 400);
    assert.match(((await unknown.json()) as { error: string }).error, /parameters\.engine: expected "llama-cpp" or "llama-server", got "vllm"/);
  } finally {
    await server.close();
  }
});

test("AI_SERVER_ENGINE=auto (the default) picks llama-server where its build runs, else the in-process engine", async () => {
  const found = await startServer({ config: { engine: "auto", llamaServer: binary, gpu: "off" } });
  const missing = await startServer({ config: { engine: "auto", llamaServer: path.join(os.tmpdir(), "no-such-llama-server"), gpu: "off" } });
  try {
    assert.equal(found.app.services.engine, "llama-server");
    assert.equal(missing.app.services.engine, "llama-cpp");
  } finally {
    await Promise.all([found.close(), missing.close()]);
  }
});

test("a missing llama-server binary falls back to the in-process engine instead of failing to start", async () => {
  const server = await startScripted(path.join(os.tmpdir(), "no-such-llama-server"));
  try {
    assert.equal(server.app.services.engine, "llama-cpp");
    assert.equal((await sayHi(server, "scripted")).message.content, SCRIPTED_REPLY);
    // A model that asks for llama-server gets the reason it cannot run; the server goes on serving the others.
    assert.equal((await postJson(server.baseUrl, "/api/create", { model: "needs-ls", from: "scripted", parameters: { engine: "llama-server" }, stream: false })).status, 200);
    const refused = await postJson(server.baseUrl, "/api/chat", { model: "needs-ls", messages: [{ role: "user", content: "Hi" }], stream: false });
    assert.equal(refused.status, 400);
    assert.match(((await refused.json()) as { error: string }).error, /asks for the llama-server engine, which cannot run here: .*no-such-llama-server/);
    assert.equal((await sayHi(server, "scripted")).message.content, SCRIPTED_REPLY);
  } finally {
    await server.close();
  }
});

test("tool calls: streamed argument pieces become whole calls, and the conversation goes out in OpenAI's shape", async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), "ai-server-ls-fake-"));
  const socketPath = path.join(dir, "fake.sock");
  let received: unknown;
  const chunk = (delta: unknown, extra: Record<string, unknown> = {}): string => `data: ${JSON.stringify({ choices: [{ index: 0, delta, finish_reason: null }], ...extra })}\n\n`;
  const fake = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => void (body += c.toString()));
    req.on("end", () => {
      received = JSON.parse(body);
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.write(chunk({ role: "assistant", content: null }));
      res.write(chunk({ tool_calls: [{ index: 0, id: "call_a", type: "function", function: { name: "get_weather", arguments: '{"ci' } }] }));
      res.write(chunk({ tool_calls: [{ index: 0, function: { arguments: 'ty": "Paris"}' } }] }));
      res.write(chunk({ tool_calls: [{ index: 1, id: "call_b", type: "function", function: { name: "get_time", arguments: "{}" } }] }));
      const timings = { prompt_n: 5, prompt_ms: 1, predicted_n: 7, predicted_ms: 2 };
      res.end(`data: ${JSON.stringify({ choices: [{ index: 0, delta: {}, finish_reason: "tool_calls" }], timings })}\n\ndata: [DONE]\n\n`);
    });
  });
  await new Promise<void>((resolve) => fake.listen(socketPath, resolve));
  try {
    const messages = toOaiMessages([
      { role: "user", content: "Weather in Paris?" },
      { role: "assistant", content: "", toolCalls: [{ name: "get_weather", arguments: { city: "Paris" } }] },
      { role: "tool", content: "sunny", toolName: "get_weather" },
    ]);
    const client = new ServerClient(socketPath, async () => undefined);
    const body = { messages, tools: toOaiTools([{ name: "get_weather", parameters: { type: "object" } }]) };
    const { events } = await collect(runGeneration(client, async () => ({ route: "/v1/chat/completions", body, format: { type: "text" } }), never, () => {}));
    assert.deepEqual(
      events.filter((e) => e.type === "tool_call").map((e) => e.type === "tool_call" && e.call),
      [
        { id: "call_a", name: "get_weather", arguments: { city: "Paris" } },
        { id: "call_b", name: "get_time", arguments: {} },
      ],
    );
    const done = events.at(-1);
    assert.ok(done?.type === "done" && done.usage.promptTokens === 5 && done.usage.completionTokens === 7 && done.usage.evalDurationNs === 2e6);
    assert.deepEqual((received as { messages: unknown }).messages, [
      { role: "user", content: "Weather in Paris?" },
      { role: "assistant", content: "", tool_calls: [{ id: "call_1_0", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } }] },
      { role: "tool", content: "sunny", tool_call_id: "call_1_0", name: "get_weather" },
    ]);
    assert.equal((received as { stream: unknown }).stream, true);
  } finally {
    await new Promise((resolve) => fake.close(resolve));
    await rm(dir, { recursive: true, force: true });
  }
});
