/**
 * The Anthropic Messages adapter's HTTP behaviour on the fake engine (test/helpers/fake-engine.ts), which stands in
 * for the model where real inference cannot provoke the case: what reaches the engine (the domain request), the
 * answer's and the stream's exact shape and event order, pings while the engine is silent, failures before and
 * after the first event, a client leaving, refusals, and count_tokens' mapping. Driven by the official
 * `@anthropic-ai/sdk` client where it can be, by raw HTTP where the wire itself is checked. Real output through the
 * same routes is proven in anthropic-messages.test.ts.
 */
import assert from "node:assert/strict";
import path from "node:path";
import { after, before, beforeEach, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import Anthropic from "@anthropic-ai/sdk";
import { toChatRequest } from "../../src/api/anthropic/messages-request.js";
import { messagesSchema } from "../../src/api/anthropic/schemas.js";
import { parseBody } from "../../src/api/validation.js";
import { GenerationError } from "../../src/domain/errors.js";
import { gguf } from "../fixtures/gguf-writer.js";
import { startFakeServer, type FakeServer } from "../helpers/fake-server.js";
import { writeFakeModel } from "../helpers/gguf-files.js";
import { createModel, postJson } from "../helpers/start-server.js";

let server: FakeServer;
let anthropic: Anthropic;
before(async () => {
  server = await startFakeServer({ numParallel: 2, maxQueue: 1, loadCooldownMs: 0 });
  anthropic = new Anthropic({ baseURL: server.baseUrl, apiKey: "unused", maxRetries: 0 });
  await postJson(server.baseUrl, "/api/create", { model: "warm", from: "chat", parameters: { temperature: 0.3 }, stream: false });
  // A header whose template has think tags: the `thinking` capability.
  const thinker = path.join(server.home, "thinker.gguf");
  await writeFakeModel(thinker, { extraMetadata: { "tokenizer.chat_template": gguf.string("{% for m in messages %}<think>{{ m.content }}{% endfor %}") } });
  await createModel(server.baseUrl, "thinker", thinker);
});
after(() => server.close());
beforeEach(() => {
  server.engine.script = {};
});

const hi: Anthropic.MessageParam[] = [{ role: "user", content: "Hi" }];
const weather: Anthropic.Tool = {
  name: "get_weather",
  description: "Weather in a city",
  input_schema: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
};
const time: Anthropic.Tool = { name: "get_time", input_schema: { type: "object", properties: { city: { type: "string" } } } };

interface SseEvent {
  event: string;
  data: Record<string, unknown>;
}

/** The server-sent events of a response body: each `event:` line with its parsed `data:`. */
async function readSse(response: Response): Promise<SseEvent[]> {
  assert.equal(response.headers.get("content-type"), "text/event-stream");
  const text = await response.text();
  assert.ok(text.endsWith("\n\n"), "every event ends with a blank line");
  return text
    .split("\n\n")
    .filter((block) => block !== "")
    .map((block) => {
      const match = /^event: (\w+)\ndata: (.*)$/.exec(block);
      assert.ok(match, block);
      const [, event = "", json = ""] = match;
      const data = JSON.parse(json) as Record<string, unknown>;
      assert.equal(data.type, event, "the event's name is its data's type");
      return { event, data };
    });
}

function postMessages(body: Record<string, unknown>, init: RequestInit = {}, query = ""): Promise<Response> {
  return postJson(server.baseUrl, `/v1/messages${query}`, { model: "chat", max_tokens: 100, messages: hi, ...body }, init);
}

async function eventually(check: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting until ${what}`);
    await sleep(10);
  }
}

test("a full request reaches the engine as the domain request", async () => {
  await anthropic.messages.create({
    model: "chat",
    max_tokens: 50,
    system: [
      { type: "text", text: "x-anthropic-billing-header: cc_version=2.1.101.e51; cc_entrypoint=cli; cch=a5145;" },
      { type: "text", text: "Be terse.", cache_control: { type: "ephemeral" } },
    ],
    messages: [
      { role: "user", content: [{ type: "text", text: "Weather" }, { type: "text", text: "in Paris?", cache_control: { type: "ephemeral" } }] },
      {
        role: "assistant",
        content: [
          { type: "thinking", thinking: "Call the tools.", signature: "sig" },
          { type: "redacted_thinking", data: "opaque" },
          { type: "text", text: "Checking." },
          { type: "tool_use", id: "toolu_1", name: "get_weather", input: { city: "Paris" } },
          { type: "tool_use", id: "toolu_2", name: "get_time", input: { city: "Paris" } },
        ],
      },
      {
        role: "user",
        content: [
          { type: "tool_result", tool_use_id: "toolu_1", content: "22C" },
          { type: "tool_result", tool_use_id: "toolu_2", content: [{ type: "text", text: "clock" }, { type: "text", text: "broken" }], is_error: true },
          { type: "text", text: "<system-reminder>Be brief</system-reminder>" },
        ],
      },
      { role: "system", content: "A reminder where it occurs." },
      { role: "user", content: "And tomorrow?" },
    ],
    tools: [weather, { ...time, cache_control: { type: "ephemeral" } }],
    tool_choice: { type: "tool", name: "get_weather", disable_parallel_tool_use: true },
    stop_sequences: ["END"],
    // Sampling fields the SDK's newest types dropped (newer Claude models refuse them); older clients still send them.
    ...{ temperature: 0.5, top_p: 0.8, top_k: 20 },
    metadata: { user_id: "someone" },
  } as Anthropic.MessageCreateParamsNonStreaming);
  assert.deepEqual(server.engine.last("chat"), {
    messages: [
      // The billing header's per-request hash is blanked: it would end the cached prefix on every turn.
      { role: "system", content: "x-anthropic-billing-header: cc_version=2.1.101.e51; cc_entrypoint=cli; cch=;\nBe terse." },
      { role: "user", content: "Weather\nin Paris?" },
      {
        role: "assistant",
        content: "Checking.",
        thinking: "Call the tools.",
        toolCalls: [
          { id: "toolu_1", name: "get_weather", arguments: { city: "Paris" } },
          { id: "toolu_2", name: "get_time", arguments: { city: "Paris" } },
        ],
      },
      { role: "tool", content: "22C", toolCallId: "toolu_1", toolName: "get_weather" },
      { role: "tool", content: "Error: clock\nbroken", toolCallId: "toolu_2", toolName: "get_time" },
      { role: "user", content: "<system-reminder>Be brief</system-reminder>" },
      { role: "system", content: "A reminder where it occurs." },
      { role: "user", content: "And tomorrow?" },
    ],
    tools: [
      { name: "get_weather", description: "Weather in a city", parameters: weather.input_schema },
      { name: "get_time", parameters: time.input_schema },
    ],
    toolChoice: { type: "function", name: "get_weather" },
    parallelToolCalls: false,
    format: { type: "text" },
    sampling: { temperature: 0.5, topK: 20, topP: 0.8, maxTokens: 50, stop: ["END"] },
  });
});

test("tool_choice, thinking and output_config map onto the domain", async () => {
  const cases: Array<[Record<string, unknown>, Record<string, unknown>]> = [
    [{ tools: [weather], tool_choice: { type: "auto" } }, { toolChoice: { type: "auto" } }],
    [{ tools: [weather], tool_choice: { type: "any", disable_parallel_tool_use: false } }, { toolChoice: { type: "required" }, parallelToolCalls: true }],
    [{ tools: [weather], tool_choice: { type: "none" } }, { toolChoice: { type: "none" } }],
    [{ tool_choice: { type: "none" } }, { toolChoice: { type: "none" } }],
    [{ model: "thinker", thinking: { type: "enabled", budget_tokens: 2048 } }, { thinking: { enabled: true, budgetTokens: 2048 } }],
    [{ model: "thinker", thinking: { type: "adaptive" }, output_config: { effort: "xhigh" } }, { thinking: { enabled: true, effort: "max" } }],
    [{ model: "thinker", thinking: { type: "enabled", budget_tokens: 1024 }, output_config: { effort: "low" } }, { thinking: { enabled: true, effort: "low", budgetTokens: 1024 } }],
    [{ model: "thinker", thinking: { type: "disabled" } }, { thinking: { enabled: false } }],
    [{ model: "thinker" }, {}],
    // A model that cannot think answers as it would without the request (agents turn thinking on whatever the model).
    [{ thinking: { type: "enabled", budget_tokens: 2048 } }, {}],
    [{ thinking: { type: "disabled" } }, { thinking: { enabled: false } }],
    [{ output_config: { format: { type: "json_schema", schema: { type: "object" } } } }, { format: { type: "json_schema", schema: { type: "object" } } }],
  ];
  for (const [fields, expected] of cases) {
    const response = await postMessages(fields);
    assert.equal(response.status, 200, `${JSON.stringify(fields)}: ${await response.clone().text()}`);
    const chat = server.engine.last("chat") as unknown as Record<string, unknown>;
    const picked = Object.fromEntries(["toolChoice", "parallelToolCalls", "thinking"].filter((key) => key in chat).map((key) => [key, chat[key]]));
    if (chat.format && (chat.format as { type: string }).type !== "text") picked.format = chat.format;
    assert.deepEqual(picked, expected, JSON.stringify(fields));
  }
});

test("sampling: Anthropic's defaults (temperature 1, top_p 1) unless the model's parameters or options say otherwise", async () => {
  await anthropic.messages.create({ model: "chat", max_tokens: 10, messages: hi });
  assert.deepEqual(server.engine.last("chat")?.sampling, { temperature: 1, topP: 1, maxTokens: 10 });
  await anthropic.messages.create({ model: "warm", max_tokens: 10, messages: hi });
  assert.deepEqual(server.engine.last("chat")?.sampling, { temperature: 0.3, topP: 1, maxTokens: 10 }, "the stored PARAMETER wins over Anthropic's default");
  const extra = { options: { top_k: 5, temperature: 0.1, num_predict: 9, min_p: 0.05 }, num_ctx: 512, keep_alive: "1m" };
  await anthropic.messages.create({ model: "warm", max_tokens: 10, messages: hi, temperature: 0.9, ...extra } as Anthropic.MessageCreateParamsNonStreaming);
  assert.deepEqual(server.engine.last("chat")?.sampling, { temperature: 0.9, topK: 5, topP: 1, minP: 0.05, maxTokens: 10 }, "Messages fields win over options");
  assert.equal(server.engine.loads.at(-1)?.contextSize, 512, "num_ctx reaches the load");
});

test("the answer: a msg_ id, the model as named, text and tool_use blocks, stop reasons, usage", async () => {
  const plain = await anthropic.messages.create({ model: "chat", max_tokens: 100, messages: hi });
  assert.match(plain.id, /^msg_[A-Za-z0-9]{24}$/);
  assert.deepEqual(
    { ...plain, id: "" },
    {
      id: "",
      type: "message",
      role: "assistant",
      model: "chat",
      content: [{ type: "text", text: "Hello world" }],
      stop_reason: "end_turn",
      stop_sequence: null,
      stop_details: null,
      usage: { input_tokens: 3, output_tokens: 2, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 },
    },
  );

  server.engine.script = { tokens: ["Let me check."], toolCalls: [{ id: "engine-id", name: "get_weather", arguments: { city: "Paris" } }, { name: "get_time", arguments: {} }] };
  const calls = await anthropic.messages.create({ model: "chat", max_tokens: 100, messages: hi, tools: [weather, time] });
  assert.equal(calls.stop_reason, "tool_use");
  assert.deepEqual(calls.content.map((block) => (block.type === "tool_use" ? { ...block, id: block.id.slice(0, 6) } : block)), [
    { type: "text", text: "Let me check." },
    { type: "tool_use", id: "toolu_", name: "get_weather", input: { city: "Paris" } },
    { type: "tool_use", id: "toolu_", name: "get_time", input: {} },
  ]);
  const ids = calls.content.flatMap((block) => (block.type === "tool_use" ? [block.id] : []));
  assert.equal(new Set(ids).size, 2, "distinct tool_use ids");
  for (const id of ids) assert.match(id, /^toolu_[A-Za-z0-9]{24}$/);

  server.engine.script = { tokens: [], toolCalls: [{ name: "get_weather", arguments: { city: "Paris" } }] };
  const only = await anthropic.messages.create({ model: "chat", max_tokens: 100, messages: hi, tools: [weather] });
  assert.deepEqual(only.content.map((block) => block.type), ["tool_use"], "no empty text block");

  server.engine.script = {};
  const cut = await anthropic.messages.create({ model: "chat", max_tokens: 1, messages: hi });
  assert.deepEqual(cut.content, [{ type: "text", text: "Hello" }]);
  assert.equal(cut.stop_reason, "max_tokens");
  assert.equal(cut.usage.output_tokens, 1);

  // The engine stops before a stop sequence; which one ended the reply is not reported by the engines yet.
  server.engine.script = { tokens: ["Hello", " world", " END", " more"] };
  const stopped = await anthropic.messages.create({ model: "chat", max_tokens: 100, messages: hi, stop_sequences: [" END"] });
  assert.deepEqual(stopped.content, [{ type: "text", text: "Hello world" }]);
  assert.equal(stopped.stop_sequence, null);
});

test("stream: the exact event order and fields, as raw server-sent events", async () => {
  server.engine.script = { tokens: ["Hel", "lo"], toolCalls: [{ name: "get_weather", arguments: { city: "Paris" } }, { name: "get_time", arguments: { city: "Paris" } }] };
  const response = await postMessages({ stream: true, tools: [weather, time] }, { headers: { "content-type": "application/json", "anthropic-version": "2023-06-01" } });
  assert.equal(response.status, 200);
  const events = await readSse(response);
  assert.deepEqual(
    events.map(({ event, data }) => (event === "content_block_start" ? `${event} ${(data.content_block as { type: string }).type}` : event)),
    [
      "message_start",
      "content_block_start text",
      "content_block_delta",
      "content_block_delta",
      "content_block_stop",
      "content_block_start tool_use",
      "content_block_delta",
      "content_block_stop",
      "content_block_start tool_use",
      "content_block_delta",
      "content_block_stop",
      "message_delta",
      "message_stop",
    ],
  );
  const [start, textStart, d1, d2, textStop, call1, json1, stop1, call2, json2, stop2, delta, stop] = events.map((e) => e.data);
  const message = start?.message as Record<string, unknown>;
  assert.match(String(message.id), /^msg_/);
  assert.deepEqual(start, {
    type: "message_start",
    message: {
      id: message.id,
      type: "message",
      role: "assistant",
      model: "chat",
      content: [],
      stop_reason: null,
      stop_sequence: null,
      stop_details: null,
      usage: { input_tokens: 0, output_tokens: 0, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 },
    },
  });
  assert.deepEqual(textStart, { type: "content_block_start", index: 0, content_block: { type: "text", text: "" } });
  assert.deepEqual(d1, { type: "content_block_delta", index: 0, delta: { type: "text_delta", text: "Hel" } });
  assert.deepEqual(d2, { type: "content_block_delta", index: 0, delta: { type: "text_delta", text: "lo" } });
  assert.deepEqual(textStop, { type: "content_block_stop", index: 0 });
  const id1 = (call1?.content_block as { id: string }).id;
  const id2 = (call2?.content_block as { id: string }).id;
  assert.match(id1, /^toolu_/);
  assert.notEqual(id1, id2);
  assert.deepEqual(call1, { type: "content_block_start", index: 1, content_block: { type: "tool_use", id: id1, name: "get_weather", input: {} } });
  assert.deepEqual(json1, { type: "content_block_delta", index: 1, delta: { type: "input_json_delta", partial_json: '{"city":"Paris"}' } });
  assert.deepEqual(stop1, { type: "content_block_stop", index: 1 });
  assert.deepEqual(call2, { type: "content_block_start", index: 2, content_block: { type: "tool_use", id: id2, name: "get_time", input: {} } });
  assert.deepEqual(json2, { type: "content_block_delta", index: 2, delta: { type: "input_json_delta", partial_json: '{"city":"Paris"}' } });
  assert.deepEqual(stop2, { type: "content_block_stop", index: 2 });
  assert.deepEqual(delta, {
    type: "message_delta",
    delta: { stop_reason: "tool_use", stop_sequence: null, stop_details: null },
    usage: { input_tokens: 3, output_tokens: 2, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 },
  });
  assert.deepEqual(stop, { type: "message_stop" });
});

test("stream: the SDK's accumulator builds the same message as the whole answer; text and tool input events", async () => {
  const script = { tokens: ["One", " two"], toolCalls: [{ name: "get_weather", arguments: { city: "Paris" } }] };
  server.engine.script = script;
  const whole = await anthropic.messages.create({ model: "chat", max_tokens: 100, messages: hi, tools: [weather] });
  server.engine.script = script;
  const stream = anthropic.messages.stream({ model: "chat", max_tokens: 100, messages: hi, tools: [weather] });
  const texts: string[] = [];
  const inputs: string[] = [];
  stream.on("text", (delta) => texts.push(delta));
  stream.on("inputJson", (partial) => inputs.push(partial));
  const final = await stream.finalMessage();
  // The SDK's stream helper adds `parsed_output` (structured output) to the message it accumulates.
  const withoutIds = ({ parsed_output: _, ...message }: Anthropic.Message & { parsed_output?: unknown }): unknown => ({
    ...message,
    id: "",
    content: message.content.map((block) => (block.type === "tool_use" ? { ...block, id: "" } : block)),
  });
  assert.deepEqual(withoutIds(final), withoutIds(whole));
  assert.deepEqual(texts, ["One", " two"]);
  assert.deepEqual(inputs, ['{"city":"Paris"}']);
});

test("a silent engine: message_start after a second, then pings until the first event", async () => {
  server.engine.script = { tokens: ["late"], delayMs: 5000 };
  const events = await readSse(await postMessages({ stream: true }));
  const names = events.map((e) => e.event);
  assert.equal(names[0], "message_start");
  assert.ok(names[1] === "ping", `a ping before the first block: ${names.join(", ")}`);
  const firstBlock = names.indexOf("content_block_start");
  assert.ok(names.slice(1, firstBlock).every((name) => name === "ping"), names.join(", "));
  assert.deepEqual(names.slice(firstBlock), ["content_block_start", "content_block_delta", "content_block_stop", "message_delta", "message_stop"]);
  assert.deepEqual(events.find((e) => e.event === "ping")?.data, { type: "ping" });

  // The SDK skips the pings.
  server.engine.script = { tokens: ["late"], delayMs: 1500 };
  const final = await anthropic.messages.stream({ model: "chat", max_tokens: 10, messages: hi }).finalMessage();
  assert.deepEqual(final.content, [{ type: "text", text: "late" }]);
});

test("an error before anything is sent is a normal HTTP error in Anthropic's shape; the SDK throws its class", async () => {
  server.engine.script = { failBeforeFirst: new GenerationError("engine exploded") };
  const response = await postMessages({ stream: true });
  assert.equal(response.status, 500);
  assert.deepEqual(await response.json(), { type: "error", error: { type: "api_error", message: "engine exploded" } });
  await assert.rejects(anthropic.messages.create({ model: "chat", max_tokens: 10, messages: hi }), (error: unknown) => {
    assert.ok(error instanceof Anthropic.InternalServerError, String(error));
    assert.equal(error.status, 500);
    return true;
  });
});

test("an error after the first event is an in-band `event: error`; the stream ends; the SDK throws it", async () => {
  server.engine.script = { tokens: ["one", "two", "three"], failAfter: { events: 1, error: new GenerationError("the engine broke") } };
  const response = await postMessages({ stream: true });
  assert.equal(response.status, 200);
  const events = await readSse(response);
  assert.deepEqual(events.at(-1), { event: "error", data: { type: "error", error: { type: "api_error", message: "the engine broke" } } });
  assert.ok(!events.some((e) => e.event === "message_stop"));

  const stream = anthropic.messages.stream({ model: "chat", max_tokens: 10, messages: hi });
  let text = "";
  stream.on("text", (delta) => (text += delta));
  await assert.rejects(stream.finalMessage(), (error: unknown) => error instanceof Anthropic.APIError && /the engine broke/.test(error.message));
  assert.equal(text, "one");

  // Failing while the prompt is read, after message_start went out on the heartbeat: in-band too.
  server.engine.script = { tokens: ["x"], delayMs: 1500, failAfter: { events: 0, error: new GenerationError("failed while reading") } };
  const late = await readSse(await postMessages({ stream: true }));
  assert.deepEqual(late.map((e) => e.event), ["message_start", "error"]);
  assert.deepEqual(late[1]?.data, { type: "error", error: { type: "api_error", message: "failed while reading" } });
});

test("a client that leaves stops the generation and frees the slot, mid-stream or while the prompt is read", async () => {
  server.engine.script = { tokens: ["tick "], endless: true, delayMs: 20 };
  const controller = new AbortController();
  const abortsBefore = server.engine.aborts;
  const stream = await anthropic.messages.create({ model: "chat", max_tokens: 100000, messages: hi, stream: true }, { signal: controller.signal });
  let deltas = 0;
  try {
    for await (const event of stream) {
      if (event.type === "content_block_delta") deltas++;
      if (deltas === 3) controller.abort();
    }
  } catch {
    // the SDK may end the iteration, or throw its abort error
  }
  assert.equal(deltas, 3);
  await eventually(() => server.engine.aborts > abortsBefore, "the generation saw the abort");
  await eventually(() => server.engine.running === 0, "the generation stopped");

  server.engine.script = { tokens: ["never"], delayMs: 60_000 };
  const silent = new AbortController();
  const response = await postMessages({ stream: true }, { signal: silent.signal });
  const reader = response.body!.getReader();
  const first = new TextDecoder().decode((await reader.read()).value);
  assert.match(first, /^event: message_start\n/);
  silent.abort();
  await eventually(() => server.engine.aborts > abortsBefore + 1, "the silent generation saw the abort");
  await eventually(() => server.engine.running === 0, "the silent generation stopped");
});

test("refusals and bad values are 400s naming the field, in Anthropic's shape; unknown models are 404s", async () => {
  const image = { type: "image", source: { type: "base64", media_type: "image/png", data: "aGk=" } };
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ max_tokens: undefined }, /^max_tokens: required/],
    [{ max_tokens: 0 }, /^max_tokens: must be at least 1/],
    [{ temperature: 1.5 }, /^temperature: must be between 0 and 1/],
    [{ top_k: -1 }, /^top_k: /],
    [{ messages: [] }, /^messages: at least one message is required/],
    [{ messages: [{ role: "tool", content: "x" }] }, /^messages\[0\]\.role: /],
    [{ tools: [{ type: "web_search_20250305", name: "web_search", max_uses: 3 }] }, /^tools\[0\]\.type: "web_search_20250305" is one of Anthropic's server tools/],
    [{ tools: [weather, { type: "bash_20250124", name: "bash" }] }, /^tools\[1\]\.type: "bash_20250124" /],
    [{ tools: [{ type: "text_editor_20250728", name: "str_replace_based_edit_tool" }] }, /^tools\[0\]\.type: "text_editor_20250728" /],
    [{ tools: [{ name: "f" }] }, /^tools\[0\]\.input_schema: required/],
    [{ tool_choice: { type: "any" } }, /^tool_choice: "any" needs tools/],
    [{ tools: [weather], tool_choice: { type: "tool", name: "nope" } }, /^tool_choice\.name: no tool is named "nope"/],
    [{ tool_choice: { type: "sometimes" } }, /^tool_choice\.type: /],
    [{ thinking: { type: "enabled", budget_tokens: 0 } }, /^thinking\.budget_tokens: must be at least 1/],
    [{ thinking: { type: "maybe" } }, /^thinking\.type: /],
    [{ system: [{ type: "image", source: {} }] }, /^system\[0\]\.type: only text blocks/],
    [{ messages: [{ role: "user", content: [image] }] }, /^messages\[0\]\.content\[0\]\.source: "chat" does not support images/],
    [{ messages: [{ role: "user", content: [{ type: "tool_result", tool_use_id: "t", content: [image] }] }] }, /^messages\[0\]\.content\[0\]\.content\[0\]\.source: "chat" does not support images/],
    [{ messages: [{ role: "user", content: [{ type: "document", source: { type: "text", data: "x" } }] }] }, /^messages\[0\]\.content\[0\]\.type: "document" blocks are not supported/],
    [{ messages: [{ role: "assistant", content: [{ type: "tool_result", tool_use_id: "t", content: "x" }] }] }, /^messages\[0\]\.content\[0\]\.type: "tool_result" blocks are not supported in an assistant message/],
    [{ messages: [{ role: "assistant", content: [{ type: "tool_use", id: "t", name: "f", input: "{bad" }] }] }, /^messages\[0\]\.content\[0\]\.input: not valid JSON/],
    [{ messages: [{ role: "assistant", content: [{ type: "tool_use", name: "f", input: {} }] }] }, /^messages\[0\]\.content\[0\]\.id: required/],
    [{ messages: [{ role: "user", content: [{ type: "tool_result", content: "x" }] }] }, /^messages\[0\]\.content\[0\]\.tool_use_id: required/],
    [{ model: "embedder" }, /^"embedder" does not support chat$/],
  ];
  for (const [fields, message] of cases) {
    const response = await postMessages(fields);
    assert.equal(response.status, 400, JSON.stringify(fields));
    const body = (await response.json()) as { type: string; error: { message: string; type: string } };
    assert.equal(body.type, "error");
    assert.match(body.error.message, message, JSON.stringify(fields));
    assert.equal(body.error.type, "invalid_request_error");
  }
  await assert.rejects(anthropic.messages.create({ model: "chat", max_tokens: 10, messages: hi, tools: [{ type: "web_search_20250305", name: "web_search" }] }), (error: unknown) => {
    assert.ok(error instanceof Anthropic.BadRequestError, String(error));
    assert.equal(error.status, 400);
    assert.equal(error.type, "invalid_request_error");
    return true;
  });
  for (const model of ["no-such-model", "not a name!"]) {
    await assert.rejects(anthropic.messages.create({ model, max_tokens: 10, messages: hi }), (error: unknown) => {
      assert.ok(error instanceof Anthropic.NotFoundError, String(error));
      assert.equal(error.type, "not_found_error");
      return true;
    });
    await assert.rejects(anthropic.messages.countTokens({ model, messages: hi }), Anthropic.NotFoundError);
  }
});

test("what Claude Code sends is accepted: ?beta=true, any anthropic-beta and anthropic-version, either key header, unknown fields, cache_control", async () => {
  const headers = {
    "content-type": "application/json",
    "anthropic-version": "2099-01-01",
    "anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14,some-future-beta-2099",
    "x-api-key": "sk-anything",
    authorization: "Bearer sk-anything",
    "anthropic-dangerous-direct-browser-access": "true",
  };
  const response = await postMessages(
    {
      system: [{ type: "text", text: "S", cache_control: { type: "ephemeral", ttl: "1h" } }],
      messages: [{ role: "user", content: [{ type: "text", text: "Hi", cache_control: { type: "ephemeral" }, citations: null }] }],
      metadata: { user_id: "u" },
      service_tier: "auto",
      container: null,
      context_management: { edits: [{ type: "clear_thinking_20251015" }] },
      mcp_servers: [],
      diagnostics: {},
      speed: "fast",
      some_future_field: { a: 1 },
    },
    { headers },
    "?beta=true",
  );
  assert.equal(response.status, 200, await response.clone().text());
  assert.deepEqual(((await response.json()) as Anthropic.Message).content, [{ type: "text", text: "Hello world" }]);

  const beta = await anthropic.beta.messages.create({ model: "chat", max_tokens: 10, messages: hi, betas: ["some-future-beta-2099"] });
  assert.deepEqual(beta.content, [{ type: "text", text: "Hello world" }]);
});

test("a body sent as curl -d sends it (form content type) is read as JSON; broken JSON is a 400 in Anthropic's shape", async () => {
  const body = JSON.stringify({ model: "chat", max_tokens: 10, messages: hi });
  const asForm = await fetch(`${server.baseUrl}/v1/messages`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body });
  assert.equal(asForm.status, 200);
  assert.deepEqual(((await asForm.json()) as Anthropic.Message).content, [{ type: "text", text: "Hello world" }]);
  const broken = await fetch(`${server.baseUrl}/v1/messages/count_tokens?beta=true`, { method: "POST", headers: { "content-type": "text/plain" }, body: "{" });
  assert.equal(broken.status, 400);
  assert.deepEqual(await broken.json(), { type: "error", error: { type: "invalid_request_error", message: "invalid JSON in request body" } });
});

test("count_tokens: the conversation as /v1/messages would map it, counted by the model", async () => {
  // The fake engine counts one token per word of every message.
  const counted = await anthropic.messages.countTokens({
    model: "chat",
    system: "Be terse.",
    messages: [
      { role: "user", content: "Hello there friend" },
      { role: "assistant", content: [{ type: "tool_use", id: "toolu_1", name: "get_weather", input: { city: "Paris" } }] },
      { role: "user", content: [{ type: "tool_result", tool_use_id: "toolu_1", content: "sunny and warm" }] },
    ],
    tools: [weather],
  });
  // system 2 + user 3 + assistant "" 1 + tool 3
  assert.deepEqual(counted, { input_tokens: 9 });
  const raw = await postJson(server.baseUrl, "/v1/messages/count_tokens?beta=true", { model: "chat", messages: hi, max_tokens: 5, some_future_field: 1 });
  assert.equal(raw.status, 200);
  assert.deepEqual(await raw.json(), { input_tokens: 1 });
  const bad = await postJson(server.baseUrl, "/v1/messages/count_tokens", { model: "chat", messages: hi, tools: [{ type: "web_search_20250305", name: "web_search" }] });
  assert.equal(bad.status, 400);
  assert.match(((await bad.json()) as { error: { message: string } }).error.message, /^tools\[0\]\.type: /);
});

test("images (pure mapping: no fixture model has vision): base64 blocks, and a tool result's images after the results", () => {
  const chat = server.app.services.store.require("chat");
  const vision = { ...chat, metadata: { ...chat.metadata, capabilities: [...chat.metadata.capabilities, "vision" as const] } };
  const image = (data: string) => ({ type: "image", source: { type: "base64", media_type: "image/png", data } });
  const { request } = toChatRequest(
    parseBody(messagesSchema, {
      model: "chat",
      max_tokens: 10,
      messages: [
        { role: "user", content: [{ type: "text", text: "Look" }, image("AAA")] },
        { role: "assistant", content: [{ type: "tool_use", id: "t1", name: "read", input: { path: "a.png" } }, { type: "tool_use", id: "t2", name: "read", input: { path: "b.txt" } }] },
        {
          role: "user",
          content: [
            { type: "tool_result", tool_use_id: "t1", content: [{ type: "text", text: "a.png:" }, image("BBB")] },
            { type: "tool_result", tool_use_id: "t2", content: "text file" },
          ],
        },
      ],
    }),
    vision,
    "chat",
  );
  assert.deepEqual(request.messages, [
    { role: "user", content: "Look", images: ["AAA"] },
    {
      role: "assistant",
      content: "",
      toolCalls: [
        { id: "t1", name: "read", arguments: { path: "a.png" } },
        { id: "t2", name: "read", arguments: { path: "b.txt" } },
      ],
    },
    { role: "tool", content: "a.png:", toolCallId: "t1", toolName: "read" },
    { role: "tool", content: "text file", toolCallId: "t2", toolName: "read" },
    { role: "user", content: "", images: ["BBB"] },
  ]);
  assert.throws(
    () => toChatRequest(parseBody(messagesSchema, { model: "chat", max_tokens: 10, messages: [{ role: "user", content: [{ type: "image", source: { type: "url", url: "https://x/y.png" } }] }] }), vision, "chat"),
    /^InvalidRequestError: messages\[0\]\.content\[0\]\.source: expected \{"type": "base64"/,
  );
});
