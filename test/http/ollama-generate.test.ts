import assert from "node:assert/strict";
import { after, before, beforeEach, test } from "node:test";
import { startFakeServer, type FakeServer } from "../helpers/fake-server.js";
import { postJson, readNdjson } from "../helpers/start-server.js";

// HTTP behaviour of /api/generate on the fake engine; real output is proven in real-inference.test.ts.
let server: FakeServer;
before(async () => {
  server = await startFakeServer();
});
after(() => server.close());
beforeEach(() => {
  server.engine.script = {};
});

const METRICS = ["total_duration", "load_duration", "prompt_eval_count", "prompt_eval_duration", "eval_count", "eval_duration"];

test("streams NDJSON by default: one delta per line, then a done line with done_reason, context and metrics", async () => {
  server.engine.script = { tokens: ["Hel", "lo", "!"], context: [7, 8, 9] };
  const response = await postJson(server.baseUrl, "/api/generate", { model: "chat", prompt: "Hi" });
  assert.equal(response.status, 200);
  assert.equal(response.headers.get("content-type"), "application/x-ndjson");
  const lines = await readNdjson(response);
  assert.deepEqual(lines.map((l) => l.response), ["Hel", "lo", "!", ""]);
  assert.deepEqual(lines.map((l) => l.done), [false, false, false, true]);
  for (const line of lines) {
    assert.equal(line.model, "chat", "the model is echoed as the client sent it");
    assert.match(String(line.created_at), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z$/);
  }
  const last = lines.at(-1) ?? {};
  assert.equal(last.done_reason, "stop");
  assert.deepEqual(last.context, [7, 8, 9]);
  for (const key of METRICS) assert.ok(Number.isInteger(last[key]) && Number(last[key]) >= 0, key);
  assert.equal(last.eval_count, 3);
  assert.ok(Number(last.total_duration) >= Number(last.load_duration));
  for (const line of lines.slice(0, -1)) for (const key of [...METRICS, "done_reason", "context"]) assert.equal(key in line, false, `${key} only on the last line`);
});

test("stream:false answers one JSON object with the whole response", async () => {
  const response = await postJson(server.baseUrl, "/api/generate", { model: "chat", prompt: "Hi", stream: false });
  assert.match(response.headers.get("content-type") ?? "", /^application\/json/);
  const body = (await response.json()) as Record<string, unknown>;
  assert.equal(body.response, "Hello world");
  assert.equal(body.done, true);
  assert.equal(body.done_reason, "stop");
  assert.deepEqual(body.context, []);
});

test("options, the model's parameters, format, system and template reach the engine", async () => {
  await postJson(server.baseUrl, "/api/create", {
    model: "tuned",
    from: "chat",
    system: "Model system",
    parameters: { temperature: 0.1, top_k: 7, stop: ["<|end|>"] },
    stream: false,
  });
  await postJson(server.baseUrl, "/api/generate", {
    model: "tuned",
    prompt: "Hi",
    format: "json",
    options: { temperature: 0.9, top_p: 0.5, min_p: 0.1, seed: 3, num_predict: 10, repeat_penalty: 1.2, repeat_last_n: 16, presence_penalty: 0.1, frequency_penalty: 0.2, mirostat: 2, numa: true },
    stream: false,
  });
  const request = server.engine.last("complete");
  assert.deepEqual(request, {
    prompt: "Hi",
    raw: false,
    system: "Model system",
    format: { type: "json" },
    sampling: { temperature: 0.9, topK: 7, topP: 0.5, minP: 0.1, seed: 3, maxTokens: 10, stop: ["<|end|>"], repeatPenalty: 1.2, repeatLastN: 16, presencePenalty: 0.1, frequencyPenalty: 0.2 },
  });
  const schema = { type: "object", properties: { a: { type: "string" } } };
  await postJson(server.baseUrl, "/api/generate", { model: "chat", prompt: "Hi", format: schema, system: "S", template: "{{ .Prompt }}", stream: false });
  const second = server.engine.last("complete");
  assert.deepEqual(second?.format, { type: "json_schema", schema });
  assert.equal(second?.system, "S");
  assert.equal(second?.template, "{{ .Prompt }}");
});

test("num_predict ends with done_reason length; stop sequences are passed down", async () => {
  server.engine.script = { tokens: ["a", "b", "c", "d"] };
  const body = (await (await postJson(server.baseUrl, "/api/generate", { model: "chat", prompt: "x", options: { num_predict: 2 }, stream: false })).json()) as Record<string, unknown>;
  assert.equal(body.response, "ab");
  assert.equal(body.done_reason, "length");
  const stopped = (await (await postJson(server.baseUrl, "/api/generate", { model: "chat", prompt: "x", options: { stop: ["c"] }, stream: false })).json()) as Record<string, unknown>;
  assert.equal(stopped.response, "ab");
  assert.equal(stopped.done_reason, "stop");
});

test("raw mode skips the template, returns no context, and refuses template/system/context", async () => {
  server.engine.script = { context: [1] };
  const body = (await (await postJson(server.baseUrl, "/api/generate", { model: "chat", prompt: "<s>x", raw: true, stream: false })).json()) as Record<string, unknown>;
  assert.equal("context" in body, false);
  assert.equal(server.engine.last("complete")?.raw, true);
  for (const extra of [{ system: "s" }, { template: "t" }, { context: [1, 2] }]) {
    const response = await postJson(server.baseUrl, "/api/generate", { model: "chat", prompt: "x", raw: true, ...extra });
    assert.equal(response.status, 400);
    assert.deepEqual(await response.json(), { error: "raw mode does not support template, system, or context" });
  }
});

test("an empty prompt loads the model (done_reason load); with keep_alive 0 it unloads (done_reason unload)", async () => {
  const loadsBefore = server.engine.loads.length;
  await postJson(server.baseUrl, "/api/generate", { model: "chat", keep_alive: 0 }).then((r) => r.text()); // start unloaded
  const load = (await (await postJson(server.baseUrl, "/api/generate", { model: "chat", stream: false })).json()) as Record<string, unknown>;
  assert.deepEqual({ response: load.response, done: load.done, done_reason: load.done_reason }, { response: "", done: true, done_reason: "load" });
  assert.equal(server.engine.loads.length, loadsBefore + 1);
  const ps = (await (await fetch(`${server.baseUrl}/api/ps`)).json()) as { models: Array<{ name: string }> };
  assert.ok(ps.models.some((m) => m.name === "chat:latest"));

  const streamed = await readNdjson(await postJson(server.baseUrl, "/api/generate", { model: "chat", prompt: "" }));
  assert.equal(streamed.length, 1);
  assert.equal(streamed[0]?.done_reason, "load");

  const unloadsBefore = server.engine.unloads;
  const unload = (await (await postJson(server.baseUrl, "/api/generate", { model: "chat", keep_alive: 0, stream: false })).json()) as Record<string, unknown>;
  assert.equal(unload.done_reason, "unload");
  assert.equal(server.engine.unloads, unloadsBefore + 1);
  const after = (await (await fetch(`${server.baseUrl}/api/ps`)).json()) as { models: Array<{ name: string }> };
  assert.ok(!after.models.some((m) => m.name === "chat:latest"));
  assert.equal(server.engine.requests.filter((r) => r.kind === "complete" && r.request.prompt === "").length, 0, "no generation ran");
});

test("keep_alive and num_ctx reach the scheduler: /api/ps shows the context and the expiry", async () => {
  await postJson(server.baseUrl, "/api/generate", { model: "chat", prompt: "x", keep_alive: "1h", options: { num_ctx: 1024 }, stream: false });
  const ps = (await (await fetch(`${server.baseUrl}/api/ps`)).json()) as { models: Array<{ name: string; expires_at: string; context_length: number }> };
  const chat = ps.models.find((m) => m.name === "chat:latest");
  assert.ok(chat);
  assert.equal(chat.context_length, 1024);
  const remaining = Date.parse(chat.expires_at) - Date.now();
  assert.ok(remaining > 59 * 60_000 && remaining <= 60 * 60_000, `expires in ${remaining} ms`);
  const bad = await postJson(server.baseUrl, "/api/generate", { model: "chat", prompt: "x", keep_alive: "forever" });
  assert.equal(bad.status, 400);
  assert.deepEqual(await bad.json(), { error: 'keep_alive: invalid duration "forever"' });
});

test("capabilities: embedding models cannot generate; suffix needs insert; think needs thinking", async () => {
  const cases: Array<[Record<string, unknown>, string]> = [
    [{ model: "embedder", prompt: "x" }, '"embedder" does not support generate'],
    [{ model: "chat", prompt: "def f(", suffix: "return x" }, '"chat" does not support insert'],
    [{ model: "chat", prompt: "x", think: true }, '"chat" does not support thinking'],
    [{ model: "chat", prompt: "x", format: "yaml" }, 'format: invalid format "yaml": expected "json" or a JSON schema'],
  ];
  for (const [body, error] of cases) {
    const response = await postJson(server.baseUrl, "/api/generate", body);
    assert.equal(response.status, 400, JSON.stringify(body));
    assert.deepEqual(await response.json(), { error });
  }
  const fim = (await (await postJson(server.baseUrl, "/api/generate", { model: "fim", prompt: "def f(", suffix: "return x", stream: false })).json()) as Record<string, unknown>;
  assert.equal(fim.done, true);
  assert.equal(server.engine.last("complete")?.suffix, "return x");
});

test("think and logprobs reach the engine as domain requests; think:false suits any model; out-of-range top_logprobs is 400", async () => {
  const sent = async (extra: Record<string, unknown>) => {
    const response = await postJson(server.baseUrl, "/api/generate", { model: "chat", prompt: "x", stream: false, ...extra });
    assert.equal(response.status, 200, JSON.stringify(extra));
    const request = server.engine.last("complete");
    return { thinking: request?.thinking, logprobs: request?.logprobs };
  };
  assert.deepEqual(await sent({}), { thinking: undefined, logprobs: undefined }, "absent: the model's default, no log-probabilities");
  assert.deepEqual(await sent({ think: false }), { thinking: { enabled: false }, logprobs: undefined });
  assert.deepEqual(await sent({ think: "none" }), { thinking: { enabled: false }, logprobs: undefined }, '"none", "false" and "" read as false');
  assert.deepEqual(await sent({ think: false, raw: true }), { thinking: undefined, logprobs: undefined }, "raw prompts are not templated");
  assert.deepEqual(await sent({ logprobs: true }), { thinking: undefined, logprobs: { top: 0 } });
  assert.deepEqual(await sent({ logprobs: true, top_logprobs: 20 }), { thinking: undefined, logprobs: { top: 20 } });
  assert.deepEqual(await sent({ logprobs: false, top_logprobs: 3 }), { thinking: undefined, logprobs: undefined }, "top_logprobs alone asks nothing, as in Ollama");

  const cases: Array<[Record<string, unknown>, string]> = [
    [{ think: "high" }, '"chat" does not support thinking'],
    [{ think: "max" }, '"chat" does not support thinking'],
    [{ think: "extreme" }, 'think: expected a boolean or "low", "medium", "high", "max"'],
    [{ think: "true" }, '"chat" does not support thinking'],
    [{ think: "toString" }, 'think: expected a boolean or "low", "medium", "high", "max"'],
    [{ logprobs: true, top_logprobs: 21 }, "top_logprobs: must be between 0 and 20"],
    [{ logprobs: true, top_logprobs: -1 }, "top_logprobs: must be between 0 and 20"],
    [{ logprobs: "yes" }, "logprobs: Invalid input: expected boolean, received string"],
  ];
  for (const [extra, error] of cases) {
    const response = await postJson(server.baseUrl, "/api/generate", { model: "chat", prompt: "x", ...extra });
    assert.equal(response.status, 400, JSON.stringify(extra));
    assert.deepEqual(await response.json(), { error }, JSON.stringify(extra));
  }
});
