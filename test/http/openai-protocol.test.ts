/**
 * The /v1 adapter's HTTP behaviour on the fake engine (test/helpers/fake-engine.ts), which stands in for the model
 * where real inference cannot provoke the case: what reaches the engine (the domain request), SSE framing, n
 * choices, failures before and after the first event, a client leaving mid-stream, the queue's 503 and the SDK's
 * retry. Real output through the same routes is proven in openai-chat, openai-completions and openai-langchain.
 */
import assert from "node:assert/strict";
import { after, before, beforeEach, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import OpenAI from "openai";
import { GenerationError } from "../../src/domain/errors.js";
import { startFakeServer, type FakeServer } from "../helpers/fake-server.js";
import { postJson } from "../helpers/start-server.js";

let server: FakeServer;
let openai: OpenAI;
before(async () => {
  server = await startFakeServer({ numParallel: 2, maxQueue: 1, loadCooldownMs: 0 });
  openai = new OpenAI({ baseURL: `${server.baseUrl}/v1`, apiKey: "unused", maxRetries: 0 });
  await postJson(server.baseUrl, "/api/create", { model: "warm", from: "chat", parameters: { temperature: 0.3 }, stream: false });
});
after(() => server.close());
beforeEach(() => {
  server.engine.script = {};
});

const hi = [{ role: "user" as const, content: "Hi" }];
const weather = {
  type: "function" as const,
  function: { name: "get_weather", description: "Weather in a city", parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] } },
};

/** The SSE events of a response body, parsed (`[DONE]` kept as the string). */
async function readSse(response: Response): Promise<unknown[]> {
  const text = await response.text();
  assert.ok(text.endsWith("\n\n"), "every event ends with a blank line");
  return text
    .split("\n\n")
    .filter((event) => event !== "")
    .map((event) => {
      assert.ok(event.startsWith("data: "), event);
      const data = event.slice("data: ".length);
      return data === "[DONE]" ? data : (JSON.parse(data) as unknown);
    });
}

async function eventually(check: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting until ${what}`);
    await sleep(10);
  }
}

test("a full chat request reaches the engine as the domain request", async () => {
  await openai.chat.completions.create({
    model: "chat",
    messages: [
      { role: "developer", content: "Be terse." },
      { role: "user", content: [{ type: "text", text: "Weather" }, { type: "text", text: "in Paris?" }] },
      { role: "assistant", content: null, tool_calls: [{ id: "call_1", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } }] },
      { role: "tool", tool_call_id: "call_1", content: "22C" },
    ],
    tools: [weather],
    tool_choice: { type: "function", function: { name: "get_weather" } },
    parallel_tool_calls: false,
    response_format: { type: "json_schema", json_schema: { name: "w", schema: { type: "object" }, strict: true } },
    stop: "END",
    seed: 7,
    max_tokens: 50,
    max_completion_tokens: 40,
    temperature: 0.5,
    top_p: 0.8,
    presence_penalty: 0.5,
    frequency_penalty: -0.5,
    logit_bias: { "42": -100, "7": 5 },
    logprobs: true,
    top_logprobs: 3,
    user: "someone",
    store: false,
    metadata: { a: "b" },
    service_tier: "auto",
  });
  assert.deepEqual(server.engine.last("chat"), {
    messages: [
      { role: "system", content: "Be terse." },
      { role: "user", content: "Weather\nin Paris?" },
      { role: "assistant", content: "", toolCalls: [{ id: "call_1", name: "get_weather", arguments: { city: "Paris" } }] },
      { role: "tool", content: "22C", toolCallId: "call_1", toolName: "get_weather" },
    ],
    tools: [{ name: "get_weather", description: "Weather in a city", parameters: weather.function.parameters }],
    toolChoice: { type: "function", name: "get_weather" },
    parallelToolCalls: false,
    format: { type: "json_schema", schema: { type: "object" } },
    sampling: {
      temperature: 0.5,
      topP: 0.8,
      seed: 7,
      maxTokens: 40,
      stop: ["END"],
      presencePenalty: 0.5,
      frequencyPenalty: -0.5,
      logitBias: [
        [7, 5],
        [42, -100],
      ],
    },
    logprobs: { top: 3 },
  });
});

test("sampling: OpenAI's defaults (temperature and top_p 1) unless the model's parameters or options say otherwise", async () => {
  await openai.chat.completions.create({ model: "chat", messages: hi });
  assert.deepEqual(server.engine.last("chat")?.sampling, { temperature: 1, topP: 1 });
  await openai.chat.completions.create({ model: "warm", messages: hi });
  assert.deepEqual(server.engine.last("chat")?.sampling, { temperature: 0.3, topP: 1 }, "the stored PARAMETER wins over OpenAI's default");
  const extra = { options: { top_k: 5, temperature: 0.1, num_predict: 9 }, num_ctx: 512, keep_alive: "1m", top_k: 3, min_p: 0.05 };
  await openai.chat.completions.create({ model: "warm", messages: hi, temperature: 0.9, ...extra } as OpenAI.ChatCompletionCreateParamsNonStreaming);
  assert.deepEqual(server.engine.last("chat")?.sampling, { temperature: 0.9, topK: 3, topP: 1, minP: 0.05, maxTokens: 9 }, "OpenAI fields win over options");
  assert.equal(server.engine.loads.at(-1)?.contextSize, 512, "num_ctx reaches the load");
});

test("thinking: reasoning_effort, reasoning.effort and chat_template_kwargs map onto the domain", async () => {
  const cases: Array<[Record<string, unknown>, unknown]> = [
    [{ reasoning_effort: "none" }, { enabled: false }],
    [{ reasoning: { effort: "none" } }, { enabled: false }],
    [{ chat_template_kwargs: { enable_thinking: false } }, { enabled: false }],
    [{}, undefined],
  ];
  for (const [fields, thinking] of cases) {
    const response = await postJson(server.baseUrl, "/v1/chat/completions", { model: "chat", messages: hi, ...fields });
    assert.equal(response.status, 200, JSON.stringify(fields));
    assert.deepEqual(server.engine.last("chat")?.thinking, thinking, JSON.stringify(fields));
  }
  const refused = await postJson(server.baseUrl, "/v1/chat/completions", { model: "chat", messages: hi, reasoning_effort: "high" });
  assert.equal(refused.status, 400, "a model that does not think");
  assert.match(((await refused.json()) as { error: { message: string } }).error.message, /"chat" does not support thinking/);
});

test("stream: SSE framing as the SDKs parse it — role first, deltas, finish chunk, usage chunk, [DONE]", async () => {
  const response = await postJson(server.baseUrl, "/v1/chat/completions", { model: "chat", messages: hi, stream: true, stream_options: { include_usage: true } });
  assert.equal(response.status, 200);
  assert.match(response.headers.get("content-type") ?? "", /^text\/event-stream/);
  const events = await readSse(response);
  assert.equal(events.at(-1), "[DONE]");
  const chunks = events.slice(0, -1) as Array<OpenAI.ChatCompletionChunk>;
  assert.deepEqual(
    chunks.map((c) => c.choices.map((choice) => [choice.delta, choice.finish_reason])),
    [[[{ role: "assistant", content: "" }, null]], [[{ content: "Hello" }, null]], [[{ content: " world" }, null]], [[{}, "stop"]], []],
  );
  const first = chunks[0];
  assert.ok(first?.id.startsWith("chatcmpl-"));
  for (const chunk of chunks) {
    assert.equal(chunk.id, first?.id, "one id for the whole stream");
    assert.equal(chunk.created, first?.created);
    assert.equal(chunk.object, "chat.completion.chunk");
    assert.equal(chunk.model, "chat");
  }
  assert.deepEqual(
    chunks.map((c) => c.usage),
    [null, null, null, null, { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5, prompt_tokens_details: { cached_tokens: 0 }, completion_tokens_details: { reasoning_tokens: 0 } }],
  );

  const plain = await readSse(await postJson(server.baseUrl, "/v1/chat/completions", { model: "chat", messages: hi, stream: true }));
  assert.equal(plain.length, 5, "without include_usage: no usage chunk");
  assert.ok(plain.slice(0, -1).every((c) => !("usage" in (c as object))), "and no usage field");
});

test("tool calls: whole deltas the SDK accumulates; content null and finish_reason tool_calls when not streaming", async () => {
  server.engine.script = {
    tokens: [],
    toolCalls: [
      { name: "get_weather", arguments: { city: "Paris" } },
      { id: "call_x", name: "get_weather", arguments: { city: "London" } },
    ],
  };
  const stream = openai.chat.completions.stream({ model: "chat", messages: hi, tools: [weather] });
  const final = await stream.finalChatCompletion();
  const calls = final.choices[0]?.message.tool_calls ?? [];
  assert.equal(final.choices[0]?.finish_reason, "tool_calls");
  assert.deepEqual(
    calls.map((c) => (c.type === "function" ? [c.function.name, c.function.arguments] : [])),
    [
      ["get_weather", '{"city":"Paris"}'],
      ["get_weather", '{"city":"London"}'],
    ],
  );
  assert.match(calls[0]?.id ?? "", /^call_[A-Za-z0-9]{24}$/, "a call without an id gets one");
  assert.equal(calls[1]?.id, "call_x", "the model's id is kept");

  const whole = await openai.chat.completions.create({ model: "chat", messages: hi, tools: [weather] });
  assert.equal(whole.choices[0]?.message.content, null);
  assert.equal(whole.choices[0]?.finish_reason, "tool_calls");
  assert.equal(whole.choices[0]?.message.tool_calls?.length, 2);
});

test("n: each choice is its own generation (with its own seed); one answer or one stream with every index", async () => {
  const before = server.engine.requests.length;
  const whole = await openai.chat.completions.create({ model: "chat", messages: hi, n: 3, seed: 10 });
  assert.deepEqual(
    whole.choices.map((c) => [c.index, c.message.content, c.finish_reason]),
    [
      [0, "Hello world", "stop"],
      [1, "Hello world", "stop"],
      [2, "Hello world", "stop"],
    ],
  );
  assert.deepEqual(whole.usage?.completion_tokens, 6, "completion tokens of every choice");
  assert.deepEqual(whole.usage?.prompt_tokens, 3, "the prompt once");
  const seeds = server.engine.requests.slice(before).map((r) => (r.kind === "chat" ? r.request.sampling.seed : undefined));
  assert.deepEqual(seeds.sort(), [10, 11, 12]);

  const stream = openai.chat.completions.stream({ model: "chat", messages: hi, n: 2 });
  const final = await stream.finalChatCompletion();
  assert.deepEqual(
    final.choices.map((c) => [c.index, c.message.role, c.message.content, c.finish_reason]),
    [
      [0, "assistant", "Hello world", "stop"],
      [1, "assistant", "Hello world", "stop"],
    ],
  );
});

test("an error before the first event is a normal HTTP error in OpenAI's shape", async () => {
  server.engine.script = { failBeforeFirst: new GenerationError("engine exploded") };
  const response = await postJson(server.baseUrl, "/v1/chat/completions", { model: "chat", messages: hi, stream: true });
  assert.equal(response.status, 500);
  assert.deepEqual(await response.json(), { error: { message: "engine exploded", type: "api_error", param: null, code: "generation_failed" } });
});

test("an error after the first event is sent in-band; the SDK throws it; no [DONE]", async () => {
  server.engine.script = { tokens: ["one", "two", "three"], failAfter: { events: 1, error: new GenerationError("the engine broke") } };
  const response = await postJson(server.baseUrl, "/v1/chat/completions", { model: "chat", messages: hi, stream: true });
  assert.equal(response.status, 200);
  const events = await readSse(response);
  assert.deepEqual(events.at(-1), { error: { message: "the engine broke", type: "api_error", param: null, code: "generation_failed" } });
  assert.ok(!events.includes("[DONE]"));

  const stream = await openai.chat.completions.create({ model: "chat", messages: hi, stream: true });
  let text = "";
  await assert.rejects(
    (async () => {
      for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? "";
    })(),
    (error: unknown) => error instanceof OpenAI.APIError && /the engine broke/.test(error.message),
  );
  assert.equal(text, "one");
});

test("a client that leaves mid-stream stops every choice's generation and frees the slots", async () => {
  server.engine.script = { tokens: ["tick "], endless: true, delayMs: 20 };
  const controller = new AbortController();
  const stream = await openai.chat.completions.create({ model: "chat", messages: hi, stream: true, n: 2 }, { signal: controller.signal });
  const seen = new Set<number>();
  const abortsBefore = server.engine.aborts;
  try {
    for await (const chunk of stream) {
      for (const choice of chunk.choices) if (choice.delta.content) seen.add(choice.index);
      if (seen.size === 2) controller.abort();
    }
  } catch {
    // the SDK may end the iteration, or throw its abort error
  }
  assert.equal(seen.size, 2, "both choices streamed");
  await eventually(() => server.engine.aborts >= abortsBefore + 2, "both generations saw the abort");
  await eventually(() => server.engine.running === 0, "both generations stopped");
});

test("a full queue is a 503 with Retry-After; the SDK waits and retries", async () => {
  server.engine.script = { tokens: ["tick "], endless: true, delayMs: 20 };
  const holders = [new AbortController(), new AbortController(), new AbortController()];
  // Two streams fill both slots, a third waits in the queue (its limit is 1).
  const open = holders.map((holder) => openai.chat.completions.create({ model: "chat", messages: hi, stream: true }, { signal: holder.signal }).then(
    async (stream) => {
      for await (const _ of stream);
    },
    () => undefined,
  ).catch(() => undefined));
  await eventually(() => server.engine.running === 2, "two generations run");
  await sleep(100);

  const statuses: Array<[number, string | null]> = [];
  const retrying = new OpenAI({
    baseURL: `${server.baseUrl}/v1`,
    apiKey: "unused",
    maxRetries: 2,
    fetch: async (url, init) => {
      const response = await fetch(url, init);
      statuses.push([response.status, response.headers.get("retry-after")]);
      if (response.status === 503) {
        server.engine.script = {};
        for (const holder of holders) holder.abort();
      }
      return response;
    },
  });
  const answer = await retrying.chat.completions.create({ model: "chat", messages: hi });
  assert.deepEqual(statuses, [
    [503, "1"],
    [200, null],
  ]);
  assert.equal(answer.choices[0]?.message.content, "Hello world");
  await Promise.all(open);
});

test("refused fields and bad values are 400s naming the field; unknown models are 404s", async () => {
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ audio: { voice: "x", format: "mp3" } }, /^audio: /],
    [{ modalities: ["text", "audio"] }, /^modalities: /],
    [{ functions: [{ name: "f" }] }, /^functions: .*use tools/],
    [{ function_call: "auto" }, /^function_call: /],
    [{ web_search_options: {} }, /^web_search_options: /],
    [{ grammar: "root ::= x" }, /^grammar: /],
    [{ temperature: 3 }, /^temperature: must be between 0 and 2/],
    [{ n: 100 }, /^n: must be at most 16/],
    [{ top_logprobs: 2 }, /^top_logprobs: requires logprobs: true/],
    [{ top_logprobs: 21, logprobs: true }, /^top_logprobs: must be between 0 and 20/],
    [{ logit_bias: { abc: 1 } }, /^logit_bias\.abc: expected a token id/],
    [{ logit_bias: { "5": 101 } }, /^logit_bias\.5: must be between -100 and 100/],
    [{ tool_choice: "required" }, /^tool_choice: "required" needs tools/],
    [{ tools: [weather], tool_choice: { type: "function", function: { name: "nope" } } }, /^tool_choice\.function\.name: no tool is named "nope"/],
    [{ tools: [{ type: "custom", custom: { name: "x" } }] }, /^tools\[0\]\.type: only "function" tools are supported/],
    [{ response_format: { type: "xml" } }, /^response_format\.type: /],
    [{ reasoning_effort: "extreme" }, /^reasoning_effort: /],
    [{ messages: [] }, /^messages: at least one message is required/],
    [{ messages: [{ role: "wizard", content: "x" }] }, /^messages\[0\]\.role: /],
    [{ messages: [{ role: "function", name: "f", content: "x" }] }, /^messages\[0\]\.role: /],
    [{ messages: [{ role: "assistant", tool_calls: [{ id: "a", type: "function", function: { name: "f", arguments: "{bad" } }] }] }, /^messages\[0\]\.tool_calls\[0\]\.function\.arguments: not valid JSON/],
    [{ messages: [{ role: "assistant", content: "x", function_call: { name: "f", arguments: "{}" } }] }, /^messages\[0\]\.function_call: /],
    [{ messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "data:image/png;base64,aGk=" } }] }] }, /^messages\[0\]\.content\[0\]\.image_url: "chat" does not support images/],
    [{ messages: [{ role: "user", content: [{ type: "input_audio", input_audio: { data: "", format: "wav" } }] }] }, /^messages\[0\]\.content\[0\]\.type: "input_audio" content is not supported/],
    [{ model: "embedder" }, /^"embedder" does not support chat$/],
    [{ model: "embedder", messages: hi, tools: [weather] }, /does not support/],
  ];
  for (const [fields, message] of cases) {
    const response = await postJson(server.baseUrl, "/v1/chat/completions", { model: "chat", messages: hi, ...fields });
    assert.equal(response.status, 400, JSON.stringify(fields));
    const body = (await response.json()) as { error: { message: string; type: string } };
    assert.match(body.error.message, message, JSON.stringify(fields));
    assert.equal(body.error.type, "invalid_request_error");
  }
  for (const model of ["no-such-model", "not a name!"]) {
    await assert.rejects(openai.chat.completions.create({ model, messages: hi }), (error: unknown) => {
      assert.ok(error instanceof OpenAI.NotFoundError, String(error));
      assert.equal(error.code, "model_not_found");
      assert.equal(error.type, "not_found_error");
      return true;
    });
  }
});

test("harmless unknown fields are accepted and ignored", async () => {
  const response = await postJson(server.baseUrl, "/v1/chat/completions", {
    model: "chat",
    messages: [{ role: "user", content: "Hi", name: "ada" }],
    user: "u",
    store: true,
    metadata: { k: "v" },
    service_tier: "default",
    prediction: { type: "content", content: "x" },
    safety_identifier: "s",
    prompt_cache_key: "k",
    verbosity: "low",
    modalities: ["text"],
    stream_options: { include_obfuscation: false },
    some_future_field: 1,
  });
  assert.equal(response.status, 200);
  const body = (await response.json()) as OpenAI.ChatCompletion;
  assert.equal(body.choices[0]?.message.content, "Hello world");
});

test("a body sent as curl -d sends it (form content type) is read as JSON, as on /api; broken JSON is a 400 in OpenAI's shape", async () => {
  const body = JSON.stringify({ model: "chat", messages: [{ role: "user", content: "Hi" }] });
  const asForm = await fetch(`${server.baseUrl}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body });
  assert.equal(asForm.status, 200);
  assert.equal(((await asForm.json()) as OpenAI.ChatCompletion).choices[0]?.message.content, "Hello world");
  const broken = await fetch(`${server.baseUrl}/v1/embeddings`, { method: "POST", headers: { "content-type": "text/plain" }, body: "{" });
  assert.equal(broken.status, 400);
  assert.deepEqual(await broken.json(), { error: { message: "invalid JSON in request body", type: "invalid_request_error", param: null, code: "invalid_request" } });
});
