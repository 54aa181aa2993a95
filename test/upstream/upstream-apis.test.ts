/**
 * Upstream models through every API, with real endpoints: plain llama.cpp llama-server processes (one thread) and a
 * second ai-server (its in-process engine), each on scripted fixture models, so the answers are exact. The server
 * under test has no weights for these models: each was created with `upstream` on /api/create. Driven by the real
 * clients: `ollama`, `openai`, `@anthropic-ai/sdk`.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import { Ollama } from "ollama";
import OpenAI from "openai";
import { ensureFixtures, RERANK_DOCUMENTS, RERANK_ORDER, RERANK_QUERY, SCRIPTED_REPLY, TOOL_ANSWER, TOOL_CALL } from "../fixtures/models.js";
import { createModel, postJson, startEngineServer, startServer, type TestServer } from "../helpers/start-server.js";
import { createUpstream, startPlainLlamaServer, type PlainLlamaServer } from "./upstream-helpers.js";

const weather: OpenAI.ChatCompletionTool = {
  type: "function",
  function: { name: TOOL_CALL.name, description: "Current weather in a city", parameters: { type: "object", required: ["city"], properties: { city: { type: "string" } } } },
};

let scripted: PlainLlamaServer;
let tools: PlainLlamaServer;
let peer: TestServer;
let server: TestServer;
let ollama: Ollama;
let openai: OpenAI;
let anthropic: Anthropic;

before(async () => {
  const fixtures = await ensureFixtures();
  [scripted, tools, peer] = await Promise.all([startPlainLlamaServer(fixtures.chat, { slots: 2 }), startPlainLlamaServer(fixtures.qwenToolCall), startEngineServer("llama-cpp")]);
  await createModel(peer.baseUrl, "scripted", fixtures.chat);
  await createModel(peer.baseUrl, "tiny", fixtures.tiny);
  await createModel(peer.baseUrl, "reranker", fixtures.reranker);
  server = await startServer();
  const created = await Promise.all([
    createUpstream(server.baseUrl, "direct", { endpoints: [{ url: scripted.url, model: "scripted-chat" }] }),
    createUpstream(server.baseUrl, "tools", { endpoints: [{ url: tools.url, model: "qwen" }] }),
    createUpstream(server.baseUrl, "relayed", { endpoints: [{ url: `${peer.baseUrl}/v1`, model: "scripted" }] }),
    createUpstream(server.baseUrl, "embedder", { endpoints: [{ url: `${peer.baseUrl}/v1/`, model: "tiny" }], capabilities: ["embedding"] }),
    createUpstream(server.baseUrl, "ranker", { endpoints: [{ url: `${peer.baseUrl}/v1`, model: "reranker" }], capabilities: ["rerank"] }),
  ]);
  for (const response of created) assert.equal(response.status, 200, await response.text());
  ollama = new Ollama({ host: server.baseUrl });
  openai = new OpenAI({ baseURL: `${server.baseUrl}/v1`, apiKey: "unused", maxRetries: 0 });
  anthropic = new Anthropic({ baseURL: server.baseUrl, apiKey: "unused", maxRetries: 0 });
});

after(async () => {
  await server?.close();
  await peer?.close();
  await Promise.all([scripted?.stop(), tools?.stop()]);
});

describe("the Ollama API", () => {
  test("chat, streamed and whole, on a llama-server endpoint and on an ai-server endpoint", async () => {
    for (const model of ["direct", "relayed"]) {
      const parts: string[] = [];
      let last: Awaited<ReturnType<typeof ollama.chat>> | undefined;
      for await (const part of await ollama.chat({ model, messages: [{ role: "user", content: "hi" }], stream: true })) {
        parts.push(part.message.content);
        last = part;
      }
      assert.ok(parts.length > 2, `${model}: the answer arrives in pieces (${parts.length})`);
      assert.equal(parts.join(""), SCRIPTED_REPLY, model);
      assert.equal(last?.done, true);
      assert.equal(last?.done_reason, "stop");
      assert.ok((last?.eval_count ?? 0) > 0 && (last?.prompt_eval_count ?? 0) >= 0, "usage from the endpoint");

      const whole = await ollama.chat({ model, messages: [{ role: "user", content: "hi" }], stream: false, options: { temperature: 0, num_predict: 3 } });
      assert.ok(SCRIPTED_REPLY.startsWith(whole.message.content) && whole.message.content.length > 0, `${model}: ${whole.message.content}`);
      assert.equal(whole.done_reason, "length", `${model}: num_predict reached the endpoint as max_tokens`);
    }
  });

  test("generate: a templated prompt (as a one-turn chat) and a raw prompt (/completions)", async () => {
    const templated = await ollama.generate({ model: "direct", prompt: "hi", stream: false });
    assert.equal(templated.response, SCRIPTED_REPLY);
    const raw = await ollama.generate({ model: "direct", prompt: "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n", raw: true, stream: false });
    assert.equal(raw.response, SCRIPTED_REPLY);
    const context = await postJson(server.baseUrl, "/api/generate", { model: "direct", prompt: "hi", context: [1, 2, 3], stream: false });
    assert.equal(context.status, 400);
    assert.match(((await context.json()) as { error: string }).error, /context .* cannot be sent to an upstream model/);
  });

  test("embed through an ai-server endpoint: the peer's own vectors", async () => {
    const through = await ollama.embed({ model: "embedder", input: ["hello world", "the weather in Paris"] });
    const own = await new Ollama({ host: peer.baseUrl }).embed({ model: "tiny", input: ["hello world", "the weather in Paris"] });
    assert.equal(through.embeddings.length, 2);
    for (const [i, vector] of through.embeddings.entries()) {
      own.embeddings[i]!.forEach((value, j) => assert.ok(Math.abs(value - vector[j]!) < 1e-5, `input ${i}, dimension ${j}`));
    }
    const short = await ollama.embed({ model: "embedder", input: "hello world", dimensions: 8 });
    assert.equal(short.embeddings[0]?.length, 8);
    assert.ok(Math.abs(Math.hypot(...short.embeddings[0]!) - 1) < 1e-6, "normalised after dimensions");
  });

  test("tokenize on a llama-server endpoint (its /tokenize); an ai-server endpoint offers none: a clear 400", async () => {
    const direct = await postJson(server.baseUrl, "/api/tokenize", { model: "direct", text: "hello world" });
    assert.equal(direct.status, 200);
    const { tokens } = (await direct.json()) as { tokens: number[] };
    assert.ok(tokens.length >= 2);
    const back = await postJson(server.baseUrl, "/api/detokenize", { model: "direct", tokens });
    assert.match(((await back.json()) as { content: string }).content, /hello world/);
    const relayed = await postJson(server.baseUrl, "/api/tokenize", { model: "relayed", text: "hello world" });
    assert.equal(relayed.status, 400);
    assert.match(((await relayed.json()) as { error: string }).error, /does not support tokenize \(none of its upstream endpoints offers it/);
  });

  test("/api/tags, /api/show and /api/ps show an upstream model (no weights; endpoints and their health)", async () => {
    const { models } = await ollama.list();
    const listed = models.find((m) => m.name === "direct:latest");
    assert.equal(listed?.size, 0);
    assert.equal(listed?.details.format, "upstream");
    const show = (await (await postJson(server.baseUrl, "/api/show", { model: "direct" })).json()) as Record<string, unknown>;
    assert.deepEqual(show.upstream, { endpoints: [{ url: scripted.url, model: "scripted-chat", weight: 1 }], capabilities: ["completion", "tools"] });
    assert.deepEqual(show.capabilities, ["completion", "tools"]);
    const ps = (await (await fetch(`${server.baseUrl}/api/ps`)).json()) as { models: Array<Record<string, unknown>> };
    const running = ps.models.find((m) => m.name === "direct:latest");
    assert.equal(running?.engine, "upstream");
    assert.equal(running?.size, 0);
    assert.equal(running?.slots, 32, "AI_SERVER_UPSTREAM_MAX_PARALLEL's default");
    assert.deepEqual(running?.upstream, { endpoints: [{ url: scripted.url, model: "scripted-chat", weight: 1, healthy: true, failures: 0, in_flight: 0 }] });
  });
});

describe("the OpenAI API", () => {
  test("chat completions streamed: text pieces, usage in the last chunk", async () => {
    const stream = await openai.chat.completions.create({ model: "relayed", messages: [{ role: "user", content: "hi" }], stream: true, stream_options: { include_usage: true } });
    let text = "";
    let chunks = 0;
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? "";
      chunks++;
      usage = chunk.usage ?? usage;
    }
    assert.equal(text, SCRIPTED_REPLY);
    assert.ok(chunks > 3);
    assert.ok((usage?.completion_tokens ?? 0) > 0 && (usage?.prompt_tokens ?? 0) > 0);
  });

  test("a tool call streamed by llama-server reaches the client whole, then the answer to its result", async () => {
    const ask: OpenAI.ChatCompletionMessageParam[] = [{ role: "user", content: "Weather in Paris?" }];
    const final = await openai.chat.completions.stream({ model: "tools", messages: ask, tools: [weather] }).finalChatCompletion();
    const choice = final.choices[0];
    assert.equal(choice?.finish_reason, "tool_calls");
    const call = choice?.message.tool_calls?.[0];
    assert.ok(call?.type === "function");
    assert.equal(call.function.name, TOOL_CALL.name);
    assert.deepEqual(JSON.parse(call.function.arguments), TOOL_CALL.params);
    const answer = await openai.chat.completions.create({
      model: "tools",
      messages: [...ask, { role: "assistant", content: null, tool_calls: [call] }, { role: "tool", tool_call_id: call.id, content: "22C and sunny" }],
      tools: [weather],
    });
    assert.equal(answer.choices[0]?.message.content, TOOL_ANSWER);
  });

  test("completions and embeddings", async () => {
    const completion = await openai.completions.create({ model: "direct", prompt: "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n", max_tokens: 50 });
    assert.equal(completion.choices[0]?.text, SCRIPTED_REPLY);
    const embeddings = await openai.embeddings.create({ model: "embedder", input: ["hello world"] });
    assert.equal(embeddings.data[0]?.embedding.length, 64);
  });

  test("rerank: the endpoint's scores for a model declared a reranker; a chat model is refused before any request", async () => {
    const ranked = await postJson(server.baseUrl, "/v1/rerank", { model: "ranker", query: RERANK_QUERY, documents: RERANK_DOCUMENTS });
    assert.equal(ranked.status, 200);
    const { results } = (await ranked.json()) as { results: Array<{ index: number }> };
    assert.deepEqual(results.map((r) => r.index), [...RERANK_ORDER]);
    assert.equal((await postJson(server.baseUrl, "/v1/rerank", { model: "direct", query: "q", documents: ["a"] })).status, 400);
  });

  test("responses, whole and streamed", async () => {
    const response = await openai.responses.create({ model: "direct", input: "hi" });
    assert.equal(response.output_text, SCRIPTED_REPLY);
    const stream = openai.responses.stream({ model: "relayed", input: "hi" });
    const deltas: string[] = [];
    stream.on("response.output_text.delta", (event) => deltas.push(event.delta));
    const final = await stream.finalResponse();
    assert.equal(deltas.join(""), SCRIPTED_REPLY);
    assert.equal(final.output_text, SCRIPTED_REPLY);
  });
});

describe("the Anthropic API", () => {
  const hi: Anthropic.MessageParam[] = [{ role: "user", content: "hi" }];

  test("messages, whole and streamed", async () => {
    for (const model of ["direct", "relayed"]) {
      const message = await anthropic.messages.create({ model, max_tokens: 100, messages: hi });
      assert.deepEqual(message.content, [{ type: "text", text: SCRIPTED_REPLY }], model);
      assert.equal(message.stop_reason, "end_turn");
      const stream = anthropic.messages.stream({ model, max_tokens: 100, messages: hi });
      const deltas: string[] = [];
      stream.on("text", (delta) => deltas.push(delta));
      const final = await stream.finalMessage();
      assert.equal(deltas.join(""), SCRIPTED_REPLY, model);
      assert.ok(deltas.length > 2, "streamed in pieces");
      assert.ok(final.usage.output_tokens > 0);
    }
  });

  test("count_tokens: counted by the llama-server endpoint, the same prompt a message then reads", async () => {
    const counted = await anthropic.messages.countTokens({ model: "direct", system: "Be brief.", messages: hi });
    const message = await anthropic.messages.create({ model: "direct", system: "Be brief.", max_tokens: 1, messages: hi });
    assert.equal(counted.input_tokens, message.usage.input_tokens + (message.usage.cache_read_input_tokens ?? 0));
    await assert.rejects(
      anthropic.messages.countTokens({ model: "relayed", messages: hi }),
      (error: unknown) => error instanceof Anthropic.BadRequestError && /counting tokens \(none of its upstream endpoints offers it/.test(error.message),
    );
  });
});
