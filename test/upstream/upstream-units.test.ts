/**
 * The upstream engine's pure parts: which endpoint serves (weights, cooldowns), server-sent events split anywhere,
 * the streamed answer → GenerationEvents as chunks arrive (tool calls whole, reasoning trimmed, usage, errors), and
 * domain requests → request JSON.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { ContextOverflowError, InvalidRequestError } from "../../src/domain/errors.js";
import type { GenerationEvent } from "../../src/domain/generation.js";
import { EndpointPool, rootRouteOf, routeOf, type Endpoint } from "../../src/engine/upstream/endpoint-pool.js";
import { chatBody, completionBody } from "../../src/engine/upstream/request-body.js";
import { sseData } from "../../src/engine/upstream/sse.js";
import { UpstreamAnswer } from "../../src/engine/upstream/stream-answer.js";
import { answerError, EndpointFailure, messageOf } from "../../src/engine/upstream/upstream-errors.js";
import { chatRequest } from "../helpers/engine-events.js";

function pool(weights: number[], cooldownMs = 1000) {
  let now = 0;
  const cooldowns: number[] = [];
  const endpoints = weights.map((weight, i) => ({ url: `http://e${i}/v1`, model: "m", weight }));
  const made = new EndpointPool(endpoints, cooldownMs, { cooldown: (_endpoint, ms) => cooldowns.push(ms) }, () => now);
  return { pool: made, cooldowns, at: (ms: number) => void (now = ms) };
}

const urls = (picked: Array<Endpoint | undefined>): string[] => picked.map((e) => e?.url ?? "none");

test("weights: smooth round-robin, two of every three requests to weight 2", () => {
  const { pool: p } = pool([2, 1]);
  assert.deepEqual(urls(Array.from({ length: 6 }, () => p.pick())), ["http://e0/v1", "http://e1/v1", "http://e0/v1", "http://e0/v1", "http://e1/v1", "http://e0/v1"]);
});

test("a failed endpoint gets no traffic during its cooldown, which doubles per failure in a row and resets on success", () => {
  const { pool: p, cooldowns, at } = pool([1, 1]);
  const [a, b] = p.endpoints as [Endpoint, Endpoint];
  p.failed(a, "refused");
  assert.deepEqual(urls([p.pick(), p.pick(), p.pick()]), ["http://e1/v1", "http://e1/v1", "http://e1/v1"]);
  p.failed(a, "again, while cooling down"); // changes nothing
  assert.deepEqual(cooldowns, [1000]);
  at(1000);
  assert.equal(p.cooling(a), false);
  p.failed(a, "refused");
  at(2999);
  assert.equal(p.cooling(a), true, "2 s the second time");
  assert.deepEqual(cooldowns, [1000, 2000]);
  at(3000);
  p.answered(a);
  assert.equal(a.failures, 0);
  p.failed(a, "refused");
  assert.deepEqual(cooldowns, [1000, 2000, 1000], "reset by the success");
  // A health check's answer during a cooldown does not end it.
  p.answered(a);
  assert.equal(p.cooling(a), true);
  assert.equal(p.status()[0]?.healthy, false);
  assert.equal(p.status()[1]?.healthy, true);
  void b;
});

test("the cooldown stops doubling at five minutes", () => {
  const { pool: p, cooldowns, at } = pool([1], 30_000);
  const [a] = p.endpoints as [Endpoint];
  let now = 0;
  for (let i = 0; i < 8; i++) {
    p.failed(a, "down");
    now = a.coolingUntilMs;
    at(now);
  }
  assert.deepEqual(cooldowns, [30_000, 60_000, 120_000, 240_000, 300_000, 300_000, 300_000, 300_000]);
});

test("all cooling down: the one whose cooldown ends first; every endpoint tried: none", () => {
  const { pool: p, at } = pool([1, 1, 1]);
  const [a, b, c] = p.endpoints as [Endpoint, Endpoint, Endpoint];
  p.failed(b, "x");
  at(10);
  p.failed(a, "x");
  p.failed(c, "x");
  assert.equal(p.pick(), b);
  assert.equal(p.pick(new Set([b])), a);
  assert.equal(p.pick(new Set([a, b, c])), undefined);
});

test("routes: the OpenAI ones under the base URL, tokenize at the server's root", () => {
  const endpoint = { url: "http://h:8000/v1", model: "m", weight: 1 };
  assert.equal(routeOf(endpoint, "/chat/completions"), "/v1/chat/completions");
  assert.equal(rootRouteOf(endpoint, "/tokenize"), "/tokenize");
  assert.equal(routeOf({ ...endpoint, url: "https://proxy/openai/v1" }, "/models"), "/openai/v1/models");
  assert.equal(rootRouteOf({ ...endpoint, url: "https://proxy/openai" }, "/tokenize"), "/openai/tokenize");
});

async function* bytes(...parts: string[]): AsyncGenerator<Uint8Array> {
  for (const part of parts) yield Buffer.from(part);
}

async function all(events: AsyncIterable<string>): Promise<string[]> {
  const out: string[] = [];
  for await (const event of events) out.push(event);
  return out;
}

test("server-sent events: split anywhere, CRLF, comments, several data lines, a last event without its blank line", async () => {
  const euro = Buffer.from("data: €\n\n");
  assert.deepEqual(await all(sseData(bytes("data: {\"a\":", "1}\n", "\ndata: two\r\n\r", "\n: comment\nevent: x\ndata: a\ndata: b\n\ndata: [DONE]"))), ['{"a":1}', "two", "a\nb", "[DONE]"]);
  const split = (async function* () {
    yield euro.subarray(0, 7); // inside the euro sign's bytes
    yield euro.subarray(7);
  })();
  assert.deepEqual(await all(sseData(split)), ["€"]);
});

function feed(answer: UpstreamAnswer, chunks: Array<Record<string, unknown>>): GenerationEvent[][] {
  return [...chunks.map((chunk) => answer.take(chunk)), answer.finish()];
}

const delta = (d: Record<string, unknown>, finish: string | null = null) => ({ choices: [{ index: 0, delta: d, finish_reason: finish }] });

test("a streamed answer: each piece an event at once; a tool call whole once the next begins or the answer ends", () => {
  const answer = new UpstreamAnswer({}, process.hrtime.bigint());
  const events = feed(answer, [
    delta({ role: "assistant", content: "" }),
    delta({ reasoning_content: "\nLet me think. " }),
    delta({ reasoning_content: "\n" }),
    delta({ content: "Sure" }),
    delta({ tool_calls: [{ index: 0, id: "call_a", function: { name: "get_weather", arguments: '{"city":' } }] }),
    delta({ tool_calls: [{ index: 0, function: { arguments: ' "Paris"}' } }] }),
    delta({ tool_calls: [{ index: 1, id: "call_b", function: { name: "get_time", arguments: "{}" } }] }),
    delta({}, "tool_calls"),
    { choices: [], usage: { prompt_tokens: 12, completion_tokens: 9, prompt_tokens_details: { cached_tokens: 4 }, completion_tokens_details: { reasoning_tokens: 3 } } },
  ]);
  assert.deepEqual(events, [
    [],
    [{ type: "thinking", text: "Let me think." }],
    [],
    [{ type: "text", text: "Sure" }],
    [],
    [],
    [{ type: "tool_call", call: { id: "call_a", name: "get_weather", arguments: { city: "Paris" } } }],
    [{ type: "tool_call", call: { id: "call_b", name: "get_time", arguments: {} } }],
    [],
    [],
  ]);
  const usage = answer.usage();
  assert.deepEqual([usage.promptTokens, usage.cachedTokens, usage.completionTokens, usage.reasoningTokens], [12, 4, 9, 3]);
  assert.equal(answer.emitted, 4);
});

test("parallel calls off: only the first call; vLLM's `reasoning`; a length stop; legacy completion chunks with logprobs", () => {
  const single = new UpstreamAnswer({ singleToolCall: true }, process.hrtime.bigint());
  const calls = feed(single, [delta({ tool_calls: [{ index: 0, id: "a", function: { name: "f", arguments: "{}" } }, { index: 1, id: "b", function: { name: "g", arguments: "{}" } }] })]).flat();
  assert.deepEqual(calls.map((e) => (e.type === "tool_call" ? e.call.name : e.type)), ["f"]);

  const vllm = new UpstreamAnswer({}, process.hrtime.bigint());
  assert.deepEqual(feed(vllm, [delta({ reasoning: "hmm" }), delta({ content: "ok" }, "length")]).flat(), [
    { type: "thinking", text: "hmm" },
    { type: "text", text: "ok" },
  ]);
  assert.equal(vllm.reason, "length");

  const legacy = new UpstreamAnswer({ logprobsTop: 1 }, process.hrtime.bigint());
  const chunk = { choices: [{ index: 0, text: "Hi", logprobs: { tokens: ["Hi"], token_logprobs: [-0.5], top_logprobs: [{ Hi: -0.5, Ho: -1.5 }] } }] };
  assert.deepEqual(legacy.take(chunk), [{ type: "text", text: "Hi", logprobs: [{ token: "Hi", logprob: -0.5, bytes: [72, 105], top: [{ token: "Hi", logprob: -0.5, bytes: [72, 105] }] }] }]);
});

test("an error event in the stream: a 4xx is the request's error, else the endpoint's failure; arguments that are not JSON are the model's", () => {
  const answer = new UpstreamAnswer({}, process.hrtime.bigint());
  assert.throws(() => answer.take({ error: { code: 400, message: "This model's maximum context length is 4096 tokens" } }), ContextOverflowError);
  assert.throws(() => answer.take({ error: { code: 400, message: "bad field" } }), InvalidRequestError);
  assert.throws(() => answer.take({ error: { type: "invalid_request_error", message: "bad field" } }), InvalidRequestError);
  assert.throws(() => answer.take({ error: { code: 500, message: "engine dead" } }), (e: unknown) => e instanceof EndpointFailure && e.outcome === "server_error");
  const broken = new UpstreamAnswer({}, process.hrtime.bigint());
  broken.take(delta({ tool_calls: [{ index: 0, function: { name: "f", arguments: "{oops" } }] }));
  assert.throws(() => broken.finish(), /arguments that are not JSON/);
});

test("answers that are not 2xx: the endpoint's failure (retried elsewhere) or the request's own error (passed on)", () => {
  const endpoint = { url: "http://e/v1", model: "m", weight: 1, index: 0, dialect: "openai", healthy: true, failures: 0, coolingUntilMs: 0, inFlight: 0, current: 0 } as const;
  const kind = (status: number, body = "") => {
    const error = answerError({ ...endpoint }, status, body);
    return error instanceof EndpointFailure ? `${error.outcome}${error.missingRoute ? "+missing" : ""}` : error.constructor.name;
  };
  assert.deepEqual([500, 502, 503, 429, 408, 401, 403, 404, 501, 400, 422].map((status) => kind(status)), [
    "server_error",
    "server_error",
    "server_error",
    "rate_limited",
    "timeout",
    "refused",
    "refused",
    "refused+missing",
    "refused+missing",
    "InvalidRequestError",
    "InvalidRequestError",
  ]);
  assert.equal(kind(400, '{"error":{"type":"exceed_context_size_error","message":"the request exceeds the available context size"}}'), "ContextOverflowError");
  assert.equal(messageOf('{"object":"error","message":"vLLM says no","code":400}'), "vLLM says no");
  assert.equal(messageOf('{"detail":"FastAPI says no"}'), "FastAPI says no");
  assert.equal(messageOf("plain text"), "plain text");
});

test("request JSON: only what is set, the endpoint's model name, a named tool as that tool alone with required", () => {
  const body = chatBody(
    chatRequest({
      sampling: { temperature: 0, maxTokens: 5, stop: ["", "END"], repeatPenalty: 1.1, logitBias: [[42, -100]] },
      tools: [{ name: "a" }, { name: "b", description: "B" }],
      toolChoice: { type: "function", name: "b" },
      format: { type: "json_schema", schema: { type: "object" } },
      thinking: { enabled: true, effort: "max" },
      logprobs: { top: 0 },
      messages: [{ role: "user", content: "look", images: ["iVBORw0KGgoAAAA"] }],
    }),
    "remote-name",
  );
  assert.deepEqual(body, {
    model: "remote-name",
    messages: [{ role: "user", content: [{ type: "text", text: "look" }, { type: "image_url", image_url: { url: "data:image/png;base64,iVBORw0KGgoAAAA" } }] }],
    tools: [{ type: "function", function: { name: "b", description: "B", parameters: { type: "object", properties: {} } } }],
    tool_choice: "required",
    temperature: 0,
    max_tokens: 5,
    stop: ["END"],
    repeat_penalty: 1.1,
    repetition_penalty: 1.1,
    logit_bias: { "42": -100 },
    response_format: { type: "json_schema", json_schema: { name: "output", schema: { type: "object" }, strict: true } },
    chat_template_kwargs: { enable_thinking: true },
    reasoning_effort: "high",
    logprobs: true,
    top_logprobs: 1,
    stream: true,
    stream_options: { include_usage: true },
  });
  assert.deepEqual(chatBody(chatRequest({ sampling: {}, thinking: { enabled: false } }), "m"), {
    model: "m",
    messages: [{ role: "user", content: "hi" }],
    chat_template_kwargs: { enable_thinking: false },
    stream: true,
    stream_options: { include_usage: true },
  });
  assert.deepEqual(completionBody({ prompt: "p", suffix: "s", raw: true, format: { type: "text" }, sampling: { seed: 7 }, logprobs: { top: 2 } }, "p", "m"), {
    model: "m",
    prompt: "p",
    suffix: "s",
    seed: 7,
    logprobs: 2,
    stream: true,
    stream_options: { include_usage: true },
  });
});
