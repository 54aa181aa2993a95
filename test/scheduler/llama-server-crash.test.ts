/**
 * Crash recovery end to end: the real server on the llama-server engine (startEngineServer), real llama-server
 * processes on the fixture models, killed with SIGKILL as the OOM killer does. A stream in flight ends with the crash
 * in-band (Ollama's NDJSON, the openai SDK's SSE), a whole answer gets 502 engine_crashed, the model leaves
 * /api/ps and the next request loads it again; a dead embeddings process is started again; a model that dies after
 * every load ends in the load cooldown with the crash as the reason (a stand-in script plays that llama-server:
 * test/helpers/fake-llama-server.ts); `ai_server_engine_crashes_total` counts every crash.
 */
import assert from "node:assert/strict";
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import OpenAI from "openai";
import { ensureFixtures, SCRIPTED_REPLY, type FixturePaths } from "../fixtures/models.js";
import { writeFakeLlamaServer, type FakeLlamaServer } from "../helpers/fake-llama-server.js";
import { parsePrometheusText } from "../helpers/prometheus-text.js";
import { createModel, postJson, startEngineServer, type TestServer } from "../helpers/start-server.js";
import { ensureMediumModel } from "./medium-model.js";

let fixtures: FixturePaths;
/** A random model of tens of tokens per second on one thread: a long generation is still running when it is killed. */
let medium: string;

before(async () => {
  [fixtures, medium] = await Promise.all([ensureFixtures(), ensureMediumModel()]);
});

const servers: TestServer[] = [];
const fakes: FakeLlamaServer[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.close()));
  await Promise.all(fakes.map((f) => f.remove()));
});

async function start(config: Record<string, unknown> = {}): Promise<TestServer> {
  const server = await startEngineServer("llama-server", { loadCooldownMs: "60s", ...config });
  servers.push(server);
  return server;
}

interface PsModel {
  name: string;
  active: number;
  queued: number;
}

async function ps(server: TestServer): Promise<PsModel[]> {
  return ((await (await fetch(`${server.baseUrl}/api/ps`)).json()) as { models: PsModel[] }).models;
}

/** The server's llama-server processes, from its process registry (AI_SERVER_HOME/run/llama-server). */
async function processes(server: TestServer): Promise<Array<{ pid: number; kind: "generation" | "embeddings" | "rerank" }>> {
  const dir = path.join(server.home, "run", "llama-server");
  const names = await readdir(dir).catch(() => [] as string[]);
  const entries = await Promise.all(names.map(async (name) => JSON.parse(await readFile(path.join(dir, name), "utf8")) as { pid: number; socketPath: string }));
  return entries.map(({ pid, socketPath }) => ({ pid, kind: socketPath.endsWith("-embed.sock") ? "embeddings" : socketPath.endsWith("-rerank.sock") ? "rerank" : "generation" }));
}

async function pidOf(server: TestServer, kind: "generation" | "embeddings"): Promise<number> {
  const found = (await processes(server)).filter((p) => p.kind === kind);
  assert.equal(found.length, 1, `one ${kind} process: ${JSON.stringify(found)}`);
  return found[0]?.pid ?? 0;
}

/** ai_server_engine_crashes_total for `model` (0 when not yet counted). */
async function crashes(server: TestServer, model: string): Promise<number> {
  const families = parsePrometheusText(await (await fetch(`${server.baseUrl}/metrics`)).text());
  return families.get("ai_server_engine_crashes_total")?.samples.find((s) => s.labels.model === model)?.value ?? 0;
}

async function eventually(check: () => Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting until ${what}`);
    await sleep(20);
  }
}

/** Reads an NDJSON stream line by line, calling `onLine` with each parsed line as it arrives. */
async function readLines(response: Response, onLine: (line: Record<string, unknown>, index: number) => void): Promise<Array<Record<string, unknown>>> {
  const lines: Array<Record<string, unknown>> = [];
  const decoder = new TextDecoder();
  let pending = "";
  for await (const chunk of response.body ?? []) {
    pending += decoder.decode(chunk as Uint8Array, { stream: true });
    let newline = pending.indexOf("\n");
    while (newline !== -1) {
      const line = JSON.parse(pending.slice(0, newline)) as Record<string, unknown>;
      pending = pending.slice(newline + 1);
      lines.push(line);
      onLine(line, lines.length - 1);
      newline = pending.indexOf("\n");
    }
  }
  return lines;
}

const KILLED = /^model "medium:latest" crashed: its llama-server process was killed by SIGKILL; its last log lines:\n/;

test("killed mid-stream: the NDJSON stream ends with the crash in-band, never done; the model leaves /api/ps; the next request loads it again", { timeout: 180_000 }, async () => {
  const server = await start();
  await createModel(server.baseUrl, "medium", medium);
  const response = await postJson(server.baseUrl, "/api/generate", { model: "medium", prompt: "hello", raw: true, options: { temperature: 0 } });
  assert.equal(response.status, 200);
  const first = await pidOf(server, "generation");
  const lines = await readLines(response, (_line, index) => {
    if (index === 2) process.kill(first, "SIGKILL");
  });
  const last = lines.at(-1) ?? {};
  assert.ok(lines.length >= 4 && lines.slice(0, -1).every((l) => typeof l.response === "string" && l.done === false), "tokens, then the error");
  assert.match(String(last.error), KILLED);
  assert.ok(!lines.some((l) => l.done === true), "never a normal end");

  await eventually(async () => (await ps(server)).length === 0, "the model leaves /api/ps");
  assert.equal(await crashes(server, "medium:latest"), 1);
  const again = await postJson(server.baseUrl, "/api/generate", { model: "medium", prompt: "hello", raw: true, stream: false, options: { num_predict: 3 } });
  assert.equal(again.status, 200, await again.clone().text());
  assert.equal(((await again.json()) as { done: boolean }).done, true);
  assert.notEqual(await pidOf(server, "generation"), first, "loaded again in a new process");
  assert.deepEqual((await ps(server)).map((m) => m.name), ["medium:latest"]);
});

test("the openai SDK's stream raises the crash in-band; a whole answer gets 502 engine_crashed; queued requests go on to a new load", { timeout: 180_000 }, async () => {
  const server = await start({ numParallel: 1 });
  await createModel(server.baseUrl, "medium", medium);
  const openai = new OpenAI({ baseURL: `${server.baseUrl}/v1`, apiKey: "unused", maxRetries: 0 });
  const stream = await openai.completions.create({ model: "medium", prompt: "hello", max_tokens: 1000, temperature: 0, stream: true });
  let chunks = 0;
  await assert.rejects(
    (async () => {
      for await (const chunk of stream) {
        assert.ok(chunk.choices[0]?.finish_reason == null, "never a normal finish");
        if (++chunks === 2) process.kill(await pidOf(server, "generation"), "SIGKILL");
      }
    })(),
    (error: unknown) => error instanceof OpenAI.APIError && KILLED.test(error.message.replace(/^\d+ /, "")),
  );

  // A whole answer in flight, and one waiting behind it for the only slot.
  const body = { model: "medium", prompt: "hello", max_tokens: 1000, temperature: 0 };
  const running = postJson(server.baseUrl, "/v1/completions", body);
  await eventually(async () => (await ps(server))[0]?.active === 1, "the request runs");
  const queued = postJson(server.baseUrl, "/v1/completions", { ...body, max_tokens: 3 });
  await eventually(async () => (await ps(server))[0]?.queued === 1, "the second request waits for the slot");
  const killed = await pidOf(server, "generation");
  process.kill(killed, "SIGKILL");
  const failed = await running;
  assert.equal(failed.status, 502);
  const error = ((await failed.json()) as { error: { code: string; message: string; type: string } }).error;
  assert.equal(error.code, "engine_crashed");
  assert.equal(error.type, "api_error");
  assert.match(error.message, KILLED);
  const served = await queued;
  assert.equal(served.status, 200, "the queued request was served by the model loaded again");
  assert.equal(((await served.json()) as { choices: Array<{ finish_reason: string }> }).choices[0]?.finish_reason, "length");
  assert.notEqual(await pidOf(server, "generation"), killed);
  assert.equal(await crashes(server, "medium:latest"), 2);
});

test("killed while idle: the model leaves /api/ps at once, and the next request loads it again and succeeds; one crash is no cooldown", { timeout: 120_000 }, async () => {
  const server = await start();
  await createModel(server.baseUrl, "chat", fixtures.chat);
  const ask = () => postJson(server.baseUrl, "/api/chat", { model: "chat", messages: [{ role: "user", content: "hi" }], stream: false });
  assert.equal((await ask()).status, 200);
  const first = await pidOf(server, "generation");
  assert.equal((await ps(server)).length, 1);
  process.kill(first, "SIGKILL");
  await eventually(async () => (await ps(server)).length === 0, "the model leaves /api/ps");
  assert.equal(await crashes(server, "chat:latest"), 1);
  const health = (await (await fetch(`${server.baseUrl}/health`)).json()) as { failed_loads: unknown[] };
  assert.deepEqual(health.failed_loads, []);
  const again = await ask();
  assert.equal(again.status, 200);
  assert.equal(((await again.json()) as { message: { content: string } }).message.content, SCRIPTED_REPLY);
  assert.notEqual(await pidOf(server, "generation"), first);
});

test("a model that dies after every load ends in the load cooldown with the crash as its reason instead of loading again and again", { timeout: 120_000 }, async () => {
  const fake = await writeFakeLlamaServer("crash-after-health");
  fakes.push(fake);
  const server = await start({ llamaServer: fake.binary });
  await createModel(server.baseUrl, "crashy", fixtures.chat);
  const ask = () => postJson(server.baseUrl, "/api/generate", { model: "crashy", prompt: "hi", stream: false });
  for (let i = 1; i <= 3; i++) {
    const response = await ask();
    assert.equal(response.status, 502, `crash ${i}`);
    const { error } = (await response.json()) as { error: string };
    assert.match(error, /^model "crashy:latest" crashed: its llama-server process was killed by SIGKILL; its last log lines:\n(.|\n)*fake llama-server: out of memory/);
    assert.equal((await fake.starts()).length, i, "one load per request so far");
  }
  // The third crash within the window: no more loads, every request fails at once with the reason.
  for (let i = 0; i < 5; i++) {
    const response = await ask();
    assert.equal(response.status, 500);
    const { error } = (await response.json()) as { error: string };
    assert.match(error, /^model "crashy:latest" keeps crashing \(3 times within 5m\), so it is not loaded again for now; the last crash: its llama-server process was killed by SIGKILL/);
    assert.match(error, /\(last crash \d+m?s ago; next attempt in \d+[hms]\)$/);
  }
  assert.equal((await fake.starts()).length, 3, "no load during the cooldown");
  const health = (await (await fetch(`${server.baseUrl}/health`)).json()) as { failed_loads: Array<{ model: string; error: string }> };
  assert.equal(health.failed_loads.length, 1);
  assert.equal(health.failed_loads[0]?.model, "crashy:latest");
  assert.match(health.failed_loads[0]?.error ?? "", /keeps crashing/);
  assert.equal(await crashes(server, "crashy:latest"), 3);
  assert.deepEqual(await ps(server), []);
});

test("the embeddings process killed: an embed in flight gets 502 engine_crashed, the next embed starts it again; the model stays loaded", { timeout: 120_000 }, async () => {
  const server = await start();
  await createModel(server.baseUrl, "tiny", fixtures.tiny);
  const embed = () => postJson(server.baseUrl, "/api/embed", { model: "tiny", input: "hello" });
  const first = await embed();
  assert.equal(first.status, 200);
  const { embeddings } = (await first.json()) as { embeddings: number[][] };
  const generation = await pidOf(server, "generation");
  const dead = await pidOf(server, "embeddings");
  // Paused so that the next embed is surely in flight (held on its socket) when the process is killed.
  process.kill(dead, "SIGSTOP");
  const pending = embed();
  await eventually(async () => (await ps(server))[0]?.active === 1, "the embed is in flight");
  process.kill(dead, "SIGKILL");
  const failed = await pending;
  assert.equal(failed.status, 502, await failed.clone().text());
  assert.match(((await failed.json()) as { error: string }).error, /^model "tiny:latest" crashed: its llama-server embeddings process was killed by SIGKILL/);
  assert.equal(await crashes(server, "tiny:latest"), 1);

  const again = await embed();
  assert.equal(again.status, 200);
  assert.deepEqual(((await again.json()) as { embeddings: number[][] }).embeddings, embeddings);
  assert.notEqual(await pidOf(server, "embeddings"), dead, "a new embeddings process");
  assert.equal(await pidOf(server, "generation"), generation, "the model's own process was never touched");
  assert.deepEqual((await ps(server)).map((m) => m.name), ["tiny:latest"]);
});
