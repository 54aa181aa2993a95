/**
 * The Ollama API end to end with REAL inference (each engine: node-llama-cpp in process, and llama.cpp's llama-server
 * in its own process; on the CPU) on the scripted fixture models, driven
 * by the clients people use: the `ollama` npm package and LangChain's ChatOllama / OllamaEmbeddings. The scripted
 * models answer fixed texts, so the assertions are exact. Serial: one model runs at a time, on one thread.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { AIMessage, HumanMessage, ToolMessage } from "@langchain/core/messages";
import { ChatOllama, OllamaEmbeddings } from "@langchain/ollama";
import { Ollama, type Tool } from "ollama";
import { ensureFixtures, JSON_REPLY, JSON_REPLY_SCHEMA, SCRIPTED_REPLY, TOOL_ANSWER, TOOL_CALL } from "../fixtures/models.js";
import { createModel, postJson, readNdjson, type TestServer, startEngineServer } from "../helpers/start-server.js";

let server: TestServer;
let ollama: Ollama;
const EXPECTED_JSON = JSON.parse(JSON_REPLY) as unknown;

/** Every test below runs once per engine: in-process, then llama.cpp's llama-server (the default where it is built). */
for (const engine of ["llama-cpp", "llama-server"] as const) {
describe(`engine ${engine}`, () => {
before(async () => {
  const fixtures = await ensureFixtures();
  server = await startEngineServer(engine);
  ollama = new Ollama({ host: server.baseUrl });
  await createModel(server.baseUrl, "scripted", fixtures.chat);
  await createModel(server.baseUrl, "json", fixtures.json);
  // Each engine's tool-call format: node-llama-cpp's function syntax in process, Qwen 2.5's (parsed by llama.cpp) out of it.
  await createModel(server.baseUrl, "tool", engine === "llama-cpp" ? fixtures.toolCall : fixtures.qwenToolCall);
  await createModel(server.baseUrl, "tiny", fixtures.tiny);
});
after(() => server?.close());

const weatherTool: Tool = {
  type: "function",
  function: {
    name: TOOL_CALL.name,
    description: "Current weather in a city",
    parameters: { type: "object", required: ["city"], properties: { city: { type: "string", description: "City name" } } },
  },
};
const hi = [{ role: "user", content: "Hi" }];

// ------------------------------------------------------------------ ollama npm client

test("ollama.chat: the exact scripted reply, with Ollama's final fields", async () => {
  const response = await ollama.chat({ model: "scripted", messages: hi, options: { temperature: 0 } });
  assert.equal(response.message.content, SCRIPTED_REPLY);
  assert.equal(response.message.role, "assistant");
  assert.equal(response.done, true);
  assert.equal(response.done_reason, "stop");
  assert.equal(response.model, "scripted");
  assert.ok(response.eval_count > 0 && response.prompt_eval_count > 0);
  assert.ok(response.eval_duration > 0 && response.total_duration >= response.eval_duration);
});

test("ollama.chat streaming: deltas join to the reply; the last part is done with metrics", async () => {
  const parts = [];
  for await (const part of await ollama.chat({ model: "scripted", messages: hi, stream: true })) parts.push(part);
  assert.ok(parts.length > 2, "streamed in several parts");
  assert.equal(parts.map((p) => p.message.content).join(""), SCRIPTED_REPLY);
  const last = parts.at(-1);
  assert.equal(last?.done, true);
  assert.equal(last?.done_reason, "stop");
  assert.ok((last?.eval_count ?? 0) > 0);
});

test("ollama.generate: templated answers carry context; raw ones do not; streaming joins to the reply", async () => {
  const templated = await ollama.generate({ model: "scripted", prompt: "Hi" });
  assert.equal(templated.response, SCRIPTED_REPLY);
  assert.ok(templated.context.length > 0);
  const raw = await ollama.generate({ model: "scripted", prompt: "Hi", raw: true });
  assert.equal(raw.response, SCRIPTED_REPLY);
  assert.equal(raw.context, undefined);
  let text = "";
  for await (const part of await ollama.generate({ model: "scripted", prompt: "Hi", stream: true })) text += part.response;
  assert.equal(text, SCRIPTED_REPLY);
});

test("num_predict cuts the answer with done_reason length; stop sequences end it early", async () => {
  const cut = await ollama.generate({ model: "scripted", prompt: "Hi", options: { num_predict: 2 } });
  assert.equal(cut.done_reason, "length");
  const partial = cut.response ?? "";
  assert.ok(partial.length > 0 && SCRIPTED_REPLY.startsWith(partial) && partial !== SCRIPTED_REPLY, partial);
  assert.equal(cut.eval_count, 2);
  const stopped = await ollama.chat({ model: "scripted", messages: hi, options: { stop: [" am"] } });
  assert.equal(stopped.message.content, "Hello! I");
  assert.equal(stopped.done_reason, "stop");
});

test("format: a JSON schema and 'json' constrain the output to the scripted JSON", async () => {
  const schema = await ollama.chat({ model: "json", messages: [{ role: "user", content: "Give JSON" }], format: JSON_REPLY_SCHEMA });
  assert.deepEqual(JSON.parse(schema.message.content), EXPECTED_JSON);
  const json = await ollama.generate({ model: "json", prompt: "Give JSON", format: "json" });
  assert.deepEqual(JSON.parse(json.response ?? ""), EXPECTED_JSON);
});

test("tools: the call comes back with object arguments; the tool result gives the answer", async () => {
  const messages = [{ role: "user", content: "Weather in Paris?" }];
  const first = await ollama.chat({ model: "tool", messages, tools: [weatherTool] });
  assert.deepEqual(first.message.tool_calls?.map((c) => ({ name: c.function.name, arguments: c.function.arguments })), [
    { name: TOOL_CALL.name, arguments: TOOL_CALL.params },
  ]);
  const streamed = [];
  for await (const part of await ollama.chat({ model: "tool", messages, tools: [weatherTool], stream: true })) streamed.push(part);
  const callChunks = streamed.filter((p) => p.message.tool_calls?.length);
  assert.equal(callChunks.length, 1, "the call is emitted whole, in one chunk");
  assert.equal(callChunks[0]?.done, false);
  assert.deepEqual(callChunks[0]?.message.tool_calls?.[0]?.function.arguments, TOOL_CALL.params);
  assert.equal(streamed.at(-1)?.done_reason, "stop");

  const second = await ollama.chat({
    model: "tool",
    tools: [weatherTool],
    messages: [...messages, first.message, { role: "tool", content: '{"forecast": "sunny"}', tool_name: TOOL_CALL.name }],
  });
  assert.equal(second.message.content, TOOL_ANSWER);
});

test("ollama.embed / embeddings: normalised vectors, dimensions, and the legacy shape", async () => {
  const { embeddings, prompt_eval_count } = await ollama.embed({ model: "tiny", input: ["hello world", "the weather in Paris"] });
  assert.equal(embeddings.length, 2);
  for (const vector of embeddings) {
    assert.equal(vector.length, 64);
    assert.ok(Math.abs(Math.hypot(...vector) - 1) < 1e-4);
  }
  assert.notDeepEqual(embeddings[0], embeddings[1]);
  assert.ok(prompt_eval_count > 0);
  const short = await ollama.embed({ model: "tiny", input: "hello world", dimensions: 16 });
  assert.equal(short.embeddings[0]?.length, 16);
  const legacy = await ollama.embeddings({ model: "tiny", prompt: "hello world" });
  assert.equal(legacy.embedding.length, 64);
});

test("model management through the client: list, show, ps, copy, delete, version", async () => {
  const { models } = await ollama.list();
  assert.deepEqual(models.map((m) => m.name).sort(), ["json:latest", "scripted:latest", "tiny:latest", "tool:latest"]);
  const show = await ollama.show({ model: "scripted" });
  assert.equal(show.details.family, "llama");
  assert.ok(show.capabilities.includes("completion"));
  const ps = await ollama.ps();
  assert.ok(ps.models.length > 0);
  await ollama.copy({ source: "scripted", destination: "scripted-copy" });
  const copied = await ollama.chat({ model: "scripted-copy", messages: hi });
  assert.equal(copied.message.content, SCRIPTED_REPLY);
  await ollama.delete({ model: "scripted-copy" });
  await assert.rejects(ollama.show({ model: "scripted-copy" }), (e: unknown) => e instanceof Error && "status_code" in e && e.status_code === 404);
  assert.match((await ollama.version()).version, /^\d+\.\d+\.\d+$/);
});

test("ollama.abort() stops a long generation at once and frees the model", async () => {
  // The random model never emits an end token: without the abort it would generate 1000 tokens.
  const stream = await ollama.generate({ model: "tiny", prompt: "Tell me a story", stream: true, options: { num_predict: 1000 } });
  let parts = 0;
  await assert.rejects(async () => {
    for await (const part of stream) {
      assert.equal(part.done, false);
      if (++parts === 3) ollama.abort();
    }
  }, (e: unknown) => e instanceof Error && e.name === "AbortError");
  const deadline = Date.now() + 5000;
  for (;;) {
    const tiny = (await ollama.ps()).models.find((m) => m.name === "tiny:latest") as { active?: number } | undefined;
    if (tiny?.active === 0) break;
    assert.ok(Date.now() < deadline, "the slot was not freed");
    await sleep(20);
  }
  ollama = new Ollama({ host: server.baseUrl }); // abort() aborts this client's future streams too
});

test("errors reach the client as ResponseError with Ollama's message", async () => {
  await assert.rejects(ollama.chat({ model: "missing", messages: hi }), /model "missing" not found, try pulling it first/);
  await assert.rejects(ollama.generate({ model: "tiny", prompt: "x", options: { temperature: "hot" as unknown as number } }), /options\.temperature/);
});

// ------------------------------------------------------------------ LangChain

test("ChatOllama.invoke: the scripted reply, usage and done metadata", async () => {
  const model = new ChatOllama({ model: "scripted", baseUrl: server.baseUrl, temperature: 0 });
  const message = await model.invoke([new HumanMessage("Hi")]);
  assert.equal(message.content, SCRIPTED_REPLY);
  assert.ok((message.usage_metadata?.output_tokens ?? 0) > 0);
  assert.ok((message.usage_metadata?.input_tokens ?? 0) > 0);
  assert.equal(message.response_metadata.done_reason, "stop");
});

test("ChatOllama.stream: chunks join to the reply; stop sequences work", async () => {
  const model = new ChatOllama({ model: "scripted", baseUrl: server.baseUrl });
  let text = "";
  let chunks = 0;
  for await (const chunk of await model.stream("Hi")) {
    text += String(chunk.content);
    chunks++;
  }
  assert.equal(text, SCRIPTED_REPLY);
  assert.ok(chunks > 2);
  const stopped = await model.invoke("Hi", { stop: [" am"] });
  assert.equal(stopped.content, "Hello! I");
});

test("ChatOllama.withStructuredOutput: JSON schema (default) and JSON mode", async () => {
  const model = new ChatOllama({ model: "json", baseUrl: server.baseUrl, temperature: 0 });
  const schema = { title: "person", ...JSON_REPLY_SCHEMA, properties: { ...JSON_REPLY_SCHEMA.properties } };
  assert.deepEqual(await model.withStructuredOutput(schema).invoke("Give JSON"), EXPECTED_JSON);
  assert.deepEqual(await model.withStructuredOutput(schema, { method: "jsonMode" }).invoke("Give JSON"), EXPECTED_JSON);
});

test("ChatOllama.bindTools: a tool call with parsed args, then the answer from the tool result", async () => {
  const model = new ChatOllama({ model: "tool", baseUrl: server.baseUrl }).bindTools([weatherTool]);
  const question = new HumanMessage("Weather in Paris?");
  const call = await model.invoke([question]);
  assert.deepEqual(call.tool_calls?.map((c) => ({ name: c.name, args: c.args })), [{ name: TOOL_CALL.name, args: TOOL_CALL.params }]);
  const id = call.tool_calls?.[0]?.id ?? "call";
  const answer = await model.invoke([question, new AIMessage({ content: "", tool_calls: call.tool_calls ?? [] }), new ToolMessage({ content: "sunny", tool_call_id: id })]);
  assert.equal(answer.content, TOOL_ANSWER);
});

test("OllamaEmbeddings: documents and queries (it sends truncate:false)", async () => {
  const embeddings = new OllamaEmbeddings({ model: "tiny", baseUrl: server.baseUrl });
  const documents = await embeddings.embedDocuments(["hello world", "sunny in Paris"]);
  assert.equal(documents.length, 2);
  assert.equal(documents[0]?.length, 64);
  const query = await embeddings.embedQuery("hello world");
  assert.deepEqual(query, documents[0]);
});

// ------------------------------------------------------------------ real engine errors through the HTTP layer

test("an engine error after the first streamed token arrives in-band; without streaming it is the HTTP status", async () => {
  // The json model can only say age 36: a schema demanding a multiple of 5 (which neither engine's grammar enforces)
  // fails validation once the output is complete.
  const strict = { ...JSON_REPLY_SCHEMA, properties: { ...JSON_REPLY_SCHEMA.properties, age: { type: "integer", multipleOf: 5 } } };
  const body = { model: "json", messages: [{ role: "user", content: "Give JSON" }], format: strict };
  const streamed = await postJson(server.baseUrl, "/api/chat", body);
  assert.equal(streamed.status, 200);
  const lines = await readNdjson(streamed);
  assert.ok(lines.length > 1 && lines[0]?.done === false);
  assert.match(String(lines.at(-1)?.error), /does not match the JSON schema/);
  await assert.rejects(async () => {
    for await (const part of await ollama.chat({ ...body, stream: true })) assert.equal(part.done, false);
  }, /does not match the JSON schema/);

  const single = await postJson(server.baseUrl, "/api/chat", { ...body, stream: false });
  assert.equal(single.status, 500);
  assert.match(((await single.json()) as { error: string }).error, /does not match the JSON schema/);
});

const LONG_INPUT = "word ".repeat(3000);

test("an embedding input longer than the context with truncate:false (as LangChain sends) is a 400", async () => {
  const refused = await postJson(server.baseUrl, "/api/embed", { model: "tiny", input: LONG_INPUT, truncate: false });
  assert.equal(refused.status, 400);
  assert.match(((await refused.json()) as { error: string }).error, /exceeds the context length/);
});

test("an embedding input longer than the context is cut when truncate is true (the default)", async () => {
  const cut = await ollama.embed({ model: "tiny", input: LONG_INPUT });
  assert.equal(cut.embeddings.length, 1);
});

test("GET /metrics exposes request counts, token counters and per-model gauges in Prometheus format", async () => {
  await ollama.chat({ model: "scripted", messages: [{ role: "user", content: "hi" }], options: { temperature: 0 } });
  const response = await fetch(`${server.baseUrl}/metrics`);
  assert.equal(response.status, 200);
  assert.match(response.headers.get("content-type") ?? "", /text\/plain/);
  const text = await response.text();
  assert.match(text, /ai_server_http_requests_total\{method="POST",route="\/api\/chat",status="200"\} [1-9]/);
  const generated = /ai_server_generated_tokens_total\{model="scripted:latest"\} (\d+)/.exec(text);
  assert.ok(generated && Number(generated[1]) >= 9, "the scripted reply is 9 tokens");
  assert.match(text, /ai_server_model_active_requests\{model="scripted:latest"\} 0/);
  assert.match(text, /ai_server_speculative_acceptance_ratio/);
});

test("a model created with a draft_model decodes speculatively: same answer, accepted guesses in /metrics", async () => {
  const missingBody = await postJson(server.baseUrl, "/api/create", { model: "scripted-spec", from: "scripted", parameters: { draft_model: "scripted", draft_num_predict: 4 }, stream: false });
  assert.equal(missingBody.status, 200);
  const answer = await ollama.chat({ model: "scripted-spec", messages: [{ role: "user", content: "hi" }], options: { temperature: 0 } });
  assert.equal(answer.message.content, SCRIPTED_REPLY);
  const text = await (await fetch(`${server.baseUrl}/metrics`)).text();
  const accepted = /ai_server_speculative_accepted_tokens\{model="scripted-spec:latest"\} (\d+)/.exec(text);
  assert.ok(accepted && Number(accepted[1]) > 0, text.split("\n").filter((l) => l.includes("speculative")).join("\n"));
  const missing = await postJson(server.baseUrl, "/api/create", { model: "bad-spec", from: "scripted", parameters: { draft_model: "nope" }, stream: false });
  assert.equal(missing.status, 200, "the draft is resolved when the model loads, not when it is created");
  const refused = await postJson(server.baseUrl, "/api/generate", { model: "bad-spec", prompt: "hi", stream: false });
  assert.equal(refused.status, 400);
  assert.match(((await refused.json()) as { error: string }).error, /draft model "nope" of "bad-spec:latest" not found/);
});
});
}

