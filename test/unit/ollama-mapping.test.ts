import assert from "node:assert/strict";
import { test } from "node:test";
import { CapabilityError, InvalidRequestError } from "../../src/domain/errors.js";
import {
  chatDoneChunk,
  chatNeeds,
  chatTextChunk,
  chatToolCallChunk,
  checkCapabilities,
  collectChat,
  collectGenerate,
  generateDoneChunk,
  generateNeeds,
  generateTextChunk,
  toChatRequest,
  toCompletionRequest,
  toMessages,
  toOutputFormat,
  toToolDefinitions,
} from "../../src/api/ollama/mapping.js";
import type { Outcome } from "../../src/inference/run-model.js";
import { effectiveOptions, toKeepAliveMs, toLoadOptions, toSampling } from "../../src/inference/model-options.js";
import { chatSchema, generateSchema, parseBody } from "../../src/api/ollama/schemas.js";
import { modelRecord } from "../helpers/records.js";

const AT = new Date("2025-05-06T07:08:09.123Z");
const usage = { promptTokens: 5, completionTokens: 7, promptDurationNs: 100, evalDurationNs: 200 };

test("toSampling maps every supported option and drops the 'unset' sentinels", () => {
  const cases: Array<[Parameters<typeof toSampling>[0], ReturnType<typeof toSampling>]> = [
    [{}, {}],
    [
      { temperature: 0.2, top_k: 10, top_p: 0.5, min_p: 0.05, seed: 42, num_predict: 16, stop: ["\n", "END"], repeat_penalty: 1.1, repeat_last_n: 32, presence_penalty: 0.3, frequency_penalty: 0.4 },
      { temperature: 0.2, topK: 10, topP: 0.5, minP: 0.05, seed: 42, maxTokens: 16, stop: ["\n", "END"], repeatPenalty: 1.1, repeatLastN: 32, presencePenalty: 0.3, frequencyPenalty: 0.4 },
    ],
    [{ seed: -1, num_predict: -1 }, {}], // random seed, unlimited
    [{ num_predict: -2 }, {}], // fill the context
    [{ num_predict: 0 }, { maxTokens: 0 }],
    [{ stop: "END" }, { stop: ["END"] }],
    [{ stop: [] }, {}],
    [{ temperature: 0 }, { temperature: 0 }],
  ];
  for (const [options, expected] of cases) assert.deepEqual(toSampling(options), expected, JSON.stringify(options));
});

test("toLoadOptions: num_ctx sets the context size; absent or non-positive leaves the default", () => {
  assert.deepEqual(toLoadOptions({ num_ctx: 8192 }), { contextSize: 8192 });
  assert.deepEqual(toLoadOptions({}), {});
  assert.deepEqual(toLoadOptions({ num_ctx: 0 }), {});
});

test("effectiveOptions: the model's stored parameters are defaults, request options win key by key", () => {
  const stored = { temperature: 0.1, stop: ["<|end|>"], top_k: 5, num_gpu: 99 };
  assert.deepEqual(effectiveOptions(stored, { temperature: 0.9, seed: undefined }), { temperature: 0.9, stop: ["<|end|>"], top_k: 5 });
  assert.deepEqual(effectiveOptions({}, undefined), {});
  assert.throws(() => effectiveOptions({ temperature: "hot" }, {}), /parameters.temperature/);
});

test("toKeepAliveMs: seconds, duration strings, negative = for ever; bad values name the field", () => {
  assert.equal(toKeepAliveMs(undefined), undefined);
  assert.equal(toKeepAliveMs(0), 0);
  assert.equal(toKeepAliveMs("10m"), 600_000);
  assert.equal(toKeepAliveMs(30), 30_000);
  assert.equal(toKeepAliveMs(-1), -1);
  assert.equal(toKeepAliveMs("-1m"), -1);
  assert.throws(() => toKeepAliveMs("soon"), (e: unknown) => e instanceof InvalidRequestError && /^keep_alive: invalid duration "soon"$/.test(e.message));
});

test("toOutputFormat: absent/empty → text, 'json' → json, object → schema, other strings → 400", () => {
  assert.deepEqual(toOutputFormat(undefined), { type: "text" });
  assert.deepEqual(toOutputFormat(""), { type: "text" });
  assert.deepEqual(toOutputFormat("json"), { type: "json" });
  const schema = { type: "object", properties: { age: { type: "integer" } }, required: ["age"] };
  assert.deepEqual(toOutputFormat(schema), { type: "json_schema", schema });
  assert.throws(() => toOutputFormat("yaml"), InvalidRequestError);
});

test("toToolDefinitions: OpenAI function tools → ToolDefinition; none or empty → undefined", () => {
  const parameters = { type: "object", properties: { city: { type: "string" } }, required: ["city"] };
  assert.deepEqual(toToolDefinitions([{ type: "function", function: { name: "get_weather", description: "Weather", parameters } }]), [
    { name: "get_weather", description: "Weather", parameters },
  ]);
  assert.deepEqual(toToolDefinitions([{ function: { name: "ping" } }]), [{ name: "ping" }]);
  assert.equal(toToolDefinitions([]), undefined);
  assert.equal(toToolDefinitions(undefined), undefined);
});

test("toMessages: roles, images, tool calls with object or string arguments, tool results", () => {
  const body = parseBody(chatSchema, {
    model: "m",
    messages: [
      { role: "USER", content: "look", images: ["aGVsbG8="] },
      { role: "assistant", content: "", tool_calls: [{ id: "call_1", function: { index: 0, name: "get_weather", arguments: { city: "Paris" } } }] },
      { role: "assistant", tool_calls: [{ function: { name: "f", arguments: '{"a":1}' } }] },
      { role: "tool", content: "22C", tool_name: "get_weather" },
      { role: "tool", content: "ok" }, // LangChain sends no tool_name
      { role: "assistant", content: "It is 22C", thinking: "hmm" },
    ],
  });
  assert.deepEqual(toMessages(body.messages ?? []), [
    { role: "user", content: "look", images: ["aGVsbG8="] },
    { role: "assistant", content: "", toolCalls: [{ id: "call_1", name: "get_weather", arguments: { city: "Paris" } }] },
    { role: "assistant", content: "", toolCalls: [{ name: "f", arguments: { a: 1 } }] },
    { role: "tool", content: "22C", toolName: "get_weather" },
    { role: "tool", content: "ok" },
    { role: "assistant", content: "It is 22C", thinking: "hmm" },
  ]);
});

test("toMessages: the model's SYSTEM is prepended only when the conversation has none", () => {
  assert.deepEqual(toMessages([{ role: "user", content: "hi" }], "Be brief."), [
    { role: "system", content: "Be brief." },
    { role: "user", content: "hi" },
  ]);
  assert.deepEqual(toMessages([{ role: "system", content: "Mine." }, { role: "user", content: "hi" }], "Be brief."), [
    { role: "system", content: "Mine." },
    { role: "user", content: "hi" },
  ]);
});

test("toMessages: tool call arguments that are not a JSON object are a 400 naming the field", () => {
  assert.throws(() => toMessages([{ role: "assistant", tool_calls: [{ function: { name: "f", arguments: "{oops" } }] }]), /messages\[0\]\.tool_calls\[0\]\.function\.arguments: not valid JSON/);
  assert.throws(() => toMessages([{ role: "assistant", tool_calls: [{ function: { name: "f", arguments: "[1]" } }] }]), /arguments: expected a JSON object/);
});

test("toCompletionRequest: templated mode takes the model's system/template; raw mode refuses them", () => {
  const record = modelRecord({ system: "SYS", template: "{{ .System }} {{ .Prompt }}" });
  const templated = toCompletionRequest(parseBody(generateSchema, { model: "m", prompt: "hi", context: [1, 2] }), record, { temperature: 0 });
  assert.deepEqual(templated, {
    prompt: "hi",
    raw: false,
    system: "SYS",
    template: "{{ .System }} {{ .Prompt }}",
    context: [1, 2],
    format: { type: "text" },
    sampling: { temperature: 0 },
  });
  const overridden = toCompletionRequest(parseBody(generateSchema, { model: "m", prompt: "hi", system: "Other", suffix: "end" }), record, {});
  assert.equal(overridden.system, "Other");
  assert.equal(overridden.suffix, "end");
  const raw = toCompletionRequest(parseBody(generateSchema, { model: "m", prompt: "<s>hi", raw: true }), record, {});
  assert.deepEqual(raw, { prompt: "<s>hi", raw: true, format: { type: "text" }, sampling: {} });
  for (const extra of [{ system: "x" }, { template: "x" }, { context: [1] }]) {
    const body = parseBody(generateSchema, { model: "m", prompt: "p", raw: true, ...extra });
    assert.throws(() => toCompletionRequest(body, record, {}), /raw mode does not support template, system, or context/);
  }
});

test("toChatRequest assembles messages, tools, format and sampling", () => {
  const body = parseBody(chatSchema, {
    model: "m",
    messages: [{ role: "user", content: "hi" }],
    tools: [{ type: "function", function: { name: "f", parameters: { type: "object" } } }],
    format: "json",
  });
  assert.deepEqual(toChatRequest(body, modelRecord(), { top_k: 3 }), {
    messages: [{ role: "user", content: "hi" }],
    tools: [{ name: "f", parameters: { type: "object" } }],
    format: { type: "json" },
    sampling: { topK: 3 },
  });
});

test("capability checks name the model as sent and the missing capability as Ollama does", () => {
  const chatOnly = ["completion", "tools"] as const;
  const cases: Array<[string, Parameters<typeof checkCapabilities>[2], readonly string[], string | undefined]> = [
    ["generate on a chat model", generateNeeds(parseBody(generateSchema, { model: "m", prompt: "x" })), chatOnly, undefined],
    ["generate on an embedding model", generateNeeds(parseBody(generateSchema, { model: "m", prompt: "x" })), ["embedding"], '"m" does not support generate'],
    ["chat on an embedding model", chatNeeds(parseBody(chatSchema, { model: "m", messages: [] })), ["embedding"], '"m" does not support chat'],
    ["suffix without infill", generateNeeds(parseBody(generateSchema, { model: "m", suffix: "x" })), chatOnly, '"m" does not support insert'],
    ["tools without tools", chatNeeds(parseBody(chatSchema, { model: "m", tools: [{ function: { name: "f" } }] })), ["completion"], '"m" does not support tools'],
    ["empty tools need nothing", chatNeeds(parseBody(chatSchema, { model: "m", tools: [] })), ["completion"], undefined],
    ["images without vision", chatNeeds(parseBody(chatSchema, { model: "m", messages: [{ role: "user", images: ["x"] }] })), chatOnly, '"m" does not support vision'],
    ["think without thinking", chatNeeds(parseBody(chatSchema, { model: "m", think: true })), chatOnly, '"m" does not support thinking'],
    ["think false is fine", chatNeeds(parseBody(chatSchema, { model: "m", think: false })), chatOnly, undefined],
  ];
  for (const [name, needs, has, message] of cases) {
    const run = (): void => checkCapabilities("m", has as Parameters<typeof checkCapabilities>[1], needs);
    if (message === undefined) assert.doesNotThrow(run, name);
    else assert.throws(run, (e: unknown) => e instanceof CapabilityError && e.message === message && e.status === 400, name);
  }
});

test("generate chunks: deltas, then a final chunk with done_reason, context and metrics in ns", () => {
  assert.deepEqual(generateTextChunk("m", "Hi", AT), { model: "m", created_at: "2025-05-06T07:08:09.123Z", response: "Hi", done: false });
  const outcome: Outcome = { reason: "length", usage, context: [1, 2, 3], totalDurationNs: 5000, loadDurationNs: 10 };
  assert.deepEqual(generateDoneChunk("m", outcome, true, AT), {
    model: "m",
    created_at: "2025-05-06T07:08:09.123Z",
    response: "",
    done: true,
    done_reason: "length",
    context: [1, 2, 3],
    total_duration: 5000,
    load_duration: 10,
    prompt_eval_count: 5,
    prompt_eval_duration: 100,
    eval_count: 7,
    eval_duration: 200,
  });
  assert.equal(generateDoneChunk("m", outcome, false, AT).context, undefined, "raw mode returns no context");
  assert.deepEqual(generateDoneChunk("m", { ...outcome, context: undefined }, true, AT).context, []);
  const load = generateDoneChunk("m", { reason: "load", totalDurationNs: 1, loadDurationNs: 1 }, false, AT);
  assert.deepEqual(load, { model: "m", created_at: "2025-05-06T07:08:09.123Z", response: "", done: true, done_reason: "load" });
});

test("chat chunks: content deltas, whole tool calls with object arguments and index, final metrics", () => {
  assert.deepEqual(chatTextChunk("m", "Hi", AT).message, { role: "assistant", content: "Hi" });
  assert.deepEqual(chatToolCallChunk("m", { name: "f", arguments: { a: 1 } }, 1, AT), {
    model: "m",
    created_at: "2025-05-06T07:08:09.123Z",
    message: { role: "assistant", content: "", tool_calls: [{ function: { index: 1, name: "f", arguments: { a: 1 } } }] },
    done: false,
  });
  assert.deepEqual(chatToolCallChunk("m", { id: "c1", name: "f", arguments: {} }, 0, AT).message.tool_calls, [{ id: "c1", function: { index: 0, name: "f", arguments: {} } }]);
  const done = chatDoneChunk("m", { reason: "stop", usage, totalDurationNs: 9, loadDurationNs: 1 }, AT);
  assert.equal(done.done, true);
  assert.equal(done.done_reason, "stop");
  assert.equal(done.eval_count, 7);
  assert.deepEqual(done.message, { role: "assistant", content: "" });
});

test("stream:false answers collect the whole text and every tool call into the final chunk", () => {
  const outcome: Outcome = { reason: "stop", usage, totalDurationNs: 9, loadDurationNs: 1 };
  const generated = collectGenerate([generateTextChunk("m", "Hello", AT), generateTextChunk("m", " world", AT), generateDoneChunk("m", outcome, true, AT)]);
  assert.equal(generated.response, "Hello world");
  assert.equal(generated.done, true);
  assert.equal(generated.eval_count, 7);
  const chat = collectChat([
    chatTextChunk("m", "Calling", AT),
    chatToolCallChunk("m", { name: "a", arguments: {} }, 0, AT),
    chatToolCallChunk("m", { name: "b", arguments: { x: 1 } }, 1, AT),
    chatDoneChunk("m", outcome, AT),
  ]);
  assert.deepEqual(chat.message, {
    role: "assistant",
    content: "Calling",
    tool_calls: [
      { function: { index: 0, name: "a", arguments: {} } },
      { function: { index: 1, name: "b", arguments: { x: 1 } } },
    ],
  });
  assert.equal(collectChat([chatTextChunk("m", "x", AT), chatDoneChunk("m", outcome, AT)]).message.tool_calls, undefined);
});
