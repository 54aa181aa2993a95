/**
 * POST/GET/DELETE /v1/responses (OpenAI's Responses API) on the fake engine (test/helpers/fake-engine.ts), which
 * stands in for the model where real inference cannot provoke the case or where the exact mapping is the point:
 * what reaches the engine, the answer's exact shape, the raw event stream (order, sequence numbers, required
 * fields), failures before and after the stream began (context_length_exceeded), stored responses (GET, DELETE,
 * previous_response_id, item_reference, retention) and a client leaving mid-stream. Real output through the same
 * routes is proven in openai-responses.test.ts.
 */
import assert from "node:assert/strict";
import { after, before, beforeEach, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import OpenAI from "openai";
import { ContextOverflowError, GenerationError, QueueFullError } from "../../src/domain/errors.js";
import { startFakeServer, type FakeServer } from "../helpers/fake-server.js";
import { postJson } from "../helpers/start-server.js";

let server: FakeServer;
let openai: OpenAI;
before(async () => {
  server = await startFakeServer({ numParallel: 2, loadCooldownMs: 0 });
  openai = new OpenAI({ baseURL: `${server.baseUrl}/v1`, apiKey: "unused", maxRetries: 0 });
});
after(() => server.close());
beforeEach(() => {
  server.engine.script = {};
});

const weather = {
  type: "function" as const,
  name: "get_weather",
  description: "Weather in a city",
  parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
  strict: true,
};
const USAGE = { input_tokens: 3, input_tokens_details: { cached_tokens: 0 }, output_tokens: 2, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: 5 };

interface SseEvent {
  event: string;
  data: Record<string, unknown> & { type: string; sequence_number: number };
}

/** The events of a Responses stream: each `event:` line must name its data's type. */
async function readEvents(response: Response): Promise<SseEvent[]> {
  const text = await response.text();
  assert.ok(text.endsWith("\n\n"), "every event ends with a blank line");
  assert.ok(!text.includes("[DONE]"), "no [DONE]");
  return text
    .split("\n\n")
    .filter((block) => block !== "")
    .map((block) => {
      const match = /^event: (\S+)\ndata: (.*)$/.exec(block);
      assert.ok(match, `an event and its data: ${block}`);
      const data = JSON.parse(match[2] ?? "") as SseEvent["data"];
      assert.equal(data.type, match[1], "the event line names the data's type");
      return { event: match[1] ?? "", data };
    });
}

async function errorOf(response: Response): Promise<{ message: string; type: string; param: string | null; code: string }> {
  return ((await response.json()) as { error: { message: string; type: string; param: string | null; code: string } }).error;
}

async function eventually(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting until ${what}`);
    await sleep(10);
  }
}

test("a full request reaches the engine as the domain request: instructions first, every item kind in order", async () => {
  await openai.responses.create({
    model: "chat",
    instructions: "Be terse.",
    input: [
      { role: "developer", content: "Answer in English." },
      { role: "user", content: [{ type: "input_text", text: "Weather" }, { type: "input_text", text: "in Paris?" }] },
      { type: "reasoning", id: "rs_1", summary: [{ type: "summary_text", text: "Look it up." }] },
      { type: "message", role: "assistant", id: "msg_1", status: "completed", content: [{ type: "output_text", text: "Let me check.", annotations: [] }] },
      { type: "function_call", id: "fc_1", call_id: "call_1", name: "get_weather", arguments: '{"city":"Paris"}' },
      { type: "function_call_output", call_id: "call_1", output: "22C" },
      { role: "assistant", content: "It is 22C." },
      // Reasoning this server cannot read (another's, encrypted) adds nothing.
      { type: "reasoning", id: "rs_2", summary: [], encrypted_content: "opaque" },
      { role: "system", content: "Mid-conversation reminder." },
      { role: "user", content: "Thanks" },
    ],
    tools: [weather],
    tool_choice: { type: "function", name: "get_weather" },
    parallel_tool_calls: false,
    text: { format: { type: "json_schema", name: "w", schema: { type: "object" }, strict: true } },
    max_output_tokens: 40,
    temperature: 0.5,
    top_p: 0.8,
    reasoning: { effort: "none" },
    store: false,
    metadata: { a: "b" },
    user: "someone",
    prompt_cache_key: "k",
    service_tier: "auto",
    include: ["reasoning.encrypted_content"],
    truncation: "disabled",
  });
  assert.deepEqual(server.engine.last("chat"), {
    messages: [
      { role: "system", content: "Be terse." },
      { role: "system", content: "Answer in English." },
      { role: "user", content: "Weather\nin Paris?" },
      { role: "assistant", content: "Let me check.", thinking: "Look it up.", toolCalls: [{ id: "call_1", name: "get_weather", arguments: { city: "Paris" } }] },
      { role: "tool", content: "22C", toolCallId: "call_1", toolName: "get_weather" },
      { role: "assistant", content: "It is 22C." },
      { role: "system", content: "Mid-conversation reminder." },
      { role: "user", content: "Thanks" },
    ],
    tools: [{ name: "get_weather", description: "Weather in a city", parameters: weather.parameters }],
    toolChoice: { type: "function", name: "get_weather" },
    parallelToolCalls: false,
    format: { type: "json_schema", schema: { type: "object" } },
    sampling: { temperature: 0.5, topP: 0.8, maxTokens: 40 },
    thinking: { enabled: false },
    truncate: false,
  });
});

test("a string input is one user message; the extras, truncation auto, logprobs and OpenAI's sampling defaults map too", async () => {
  await postJson(server.baseUrl, "/v1/responses", { model: "chat", input: "Hi", options: { top_k: 5, num_predict: 9 }, num_ctx: 512, keep_alive: "1m", truncation: "auto", top_logprobs: 2 });
  assert.deepEqual(server.engine.last("chat"), {
    messages: [{ role: "user", content: "Hi" }],
    format: { type: "text" },
    sampling: { temperature: 1, topK: 5, topP: 1, maxTokens: 9 },
    logprobs: { top: 2 },
    truncate: true,
  });
  assert.equal(server.engine.loads.at(-1)?.contextSize, 512, "num_ctx reaches the load");
  await postJson(server.baseUrl, "/v1/responses", { model: "chat", input: "Hi", include: ["message.output_text.logprobs"], text: { format: { type: "json_object" } } });
  assert.deepEqual(server.engine.last("chat")?.logprobs, { top: 0 });
  assert.deepEqual(server.engine.last("chat")?.format, { type: "json" });
});

test("the answer: a response object with the message, usage and the request's settings echoed; output_text for the SDK", async () => {
  const before = Math.floor(Date.now() / 1000);
  const response = await openai.responses.create({ model: "chat", input: "Hi", instructions: "Be terse.", metadata: { k: "v" } });
  assert.match(response.id, /^resp_[A-Za-z0-9]{24}$/);
  assert.ok(response.created_at >= before && response.created_at <= Date.now() / 1000 + 1);
  const message = response.output[0];
  assert.ok(message?.type === "message");
  assert.match(message.id, /^msg_[A-Za-z0-9]{24}$/);
  const { output_text: outputText, ...rest } = response;
  assert.equal(outputText, "Hello world", "the SDK computes output_text from the output");
  assert.deepEqual(rest, {
    id: response.id,
    object: "response",
    created_at: response.created_at,
    status: "completed",
    background: false,
    error: null,
    incomplete_details: null,
    instructions: "Be terse.",
    max_output_tokens: null,
    model: "chat",
    output: [{ id: message.id, type: "message", status: "completed", role: "assistant", content: [{ type: "output_text", text: "Hello world", annotations: [], logprobs: [] }] }],
    parallel_tool_calls: true,
    previous_response_id: null,
    reasoning: { effort: null, summary: null },
    store: true,
    temperature: 1,
    text: { format: { type: "text" } },
    tool_choice: "auto",
    tools: [],
    top_logprobs: null,
    top_p: 1,
    truncation: "disabled",
    usage: USAGE,
    metadata: { k: "v" },
  });
});

test("function calls: one output item each, after the text, with the model's call id or a new one; tools echoed", async () => {
  server.engine.script = {
    tokens: [],
    toolCalls: [
      { name: "get_weather", arguments: { city: "Paris" } },
      { id: "call_x", name: "get_weather", arguments: { city: "London" } },
    ],
  };
  const response = await openai.responses.create({ model: "chat", input: "Weather?", tools: [weather], tool_choice: "required" });
  assert.equal(response.status, "completed");
  assert.equal(response.output_text, "");
  const calls = response.output.map((item) => {
    assert.ok(item.type === "function_call");
    assert.match(item.id ?? "", /^fc_[A-Za-z0-9]{24}$/);
    return [item.status, item.call_id, item.name, item.arguments];
  });
  assert.match(String(calls[0]?.[1]), /^call_[A-Za-z0-9]{24}$/, "a call without an id gets one");
  assert.deepEqual(calls, [
    ["completed", calls[0]?.[1], "get_weather", '{"city":"Paris"}'],
    ["completed", "call_x", "get_weather", '{"city":"London"}'],
  ]);
  assert.deepEqual(response.tools, [{ type: "function", name: "get_weather", description: "Weather in a city", parameters: weather.parameters, strict: true }]);
  assert.equal(response.tool_choice, "required");
});

test("max_output_tokens reached: status incomplete with its reason, the message incomplete", async () => {
  server.engine.script = { tokens: ["a", "b", "c"] };
  const response = await openai.responses.create({ model: "chat", input: "Hi", max_output_tokens: 2 });
  assert.equal(response.status, "incomplete");
  assert.deepEqual(response.incomplete_details, { reason: "max_output_tokens" });
  assert.equal(response.max_output_tokens, 2);
  assert.equal(response.output_text, "ab");
  assert.equal(response.output[0]?.type === "message" && response.output[0].status, "incomplete");
});

test("raw stream: every event in the order the SDKs require, numbered from 0, with its required fields; no [DONE]", async () => {
  server.engine.script = { toolCalls: [{ id: "call_1", name: "get_weather", arguments: { city: "Paris" } }] };
  const response = await postJson(server.baseUrl, "/v1/responses", { model: "chat", input: "Hi", stream: true, tools: [weather] });
  assert.equal(response.status, 200);
  assert.match(response.headers.get("content-type") ?? "", /^text\/event-stream/);
  const events = await readEvents(response);
  assert.deepEqual(
    events.map((e) => e.event),
    [
      "response.created",
      "response.in_progress",
      "response.output_item.added",
      "response.content_part.added",
      "response.output_text.delta",
      "response.output_text.delta",
      "response.output_text.done",
      "response.content_part.done",
      "response.output_item.done",
      "response.output_item.added",
      "response.function_call_arguments.delta",
      "response.function_call_arguments.done",
      "response.output_item.done",
      "response.completed",
    ],
  );
  assert.deepEqual(
    events.map((e) => e.data.sequence_number),
    events.map((_, i) => i),
  );
  const [created, inProgress, added, partAdded, delta1, delta2, textDone, partDone, itemDone, callAdded, argsDelta, argsDone, callDone, completed] = events.map((e) => e.data);
  const id = (created?.response as { id: string }).id;
  for (const start of [created, inProgress]) {
    assert.deepEqual({ ...(start?.response as object), id: "" }, { ...(completed?.response as object), id: "", status: "in_progress", output: [], usage: null });
  }
  const msg = (added?.item as { id: string }).id;
  assert.deepEqual(added, { type: "response.output_item.added", sequence_number: 2, output_index: 0, item: { id: msg, type: "message", status: "in_progress", role: "assistant", content: [] } });
  const part = { type: "output_text", text: "", annotations: [], logprobs: [] };
  const at = { item_id: msg, output_index: 0, content_index: 0 };
  assert.deepEqual(partAdded, { type: "response.content_part.added", sequence_number: 3, ...at, part });
  assert.deepEqual(delta1, { type: "response.output_text.delta", sequence_number: 4, ...at, delta: "Hello", logprobs: [] });
  assert.deepEqual(delta2, { type: "response.output_text.delta", sequence_number: 5, ...at, delta: " world", logprobs: [] });
  assert.deepEqual(textDone, { type: "response.output_text.done", sequence_number: 6, ...at, text: "Hello world", logprobs: [] });
  const donePart = { ...part, text: "Hello world" };
  assert.deepEqual(partDone, { type: "response.content_part.done", sequence_number: 7, ...at, part: donePart });
  const message = { id: msg, type: "message", status: "completed", role: "assistant", content: [donePart] };
  assert.deepEqual(itemDone, { type: "response.output_item.done", sequence_number: 8, output_index: 0, item: message });
  const fc = (callAdded?.item as { id: string }).id;
  assert.match(fc, /^fc_/);
  const call = { id: fc, type: "function_call", status: "in_progress", call_id: "call_1", name: "get_weather", arguments: "" };
  assert.deepEqual(callAdded, { type: "response.output_item.added", sequence_number: 9, output_index: 1, item: call });
  const args = '{"city":"Paris"}';
  assert.deepEqual(argsDelta, { type: "response.function_call_arguments.delta", sequence_number: 10, item_id: fc, output_index: 1, delta: args });
  assert.deepEqual(argsDone, { type: "response.function_call_arguments.done", sequence_number: 11, item_id: fc, output_index: 1, name: "get_weather", arguments: args });
  const doneCall = { ...call, status: "completed", arguments: args };
  assert.deepEqual(callDone, { type: "response.output_item.done", sequence_number: 12, output_index: 1, item: doneCall });
  const final = completed?.response as OpenAI.Responses.Response;
  assert.equal(final.id, id);
  assert.equal(final.status, "completed");
  assert.deepEqual(final.output, [message, doneCall]);
  assert.deepEqual(final.usage, USAGE);

  const stored = await openai.responses.retrieve(id);
  assert.deepEqual(stored.output, final.output, "the streamed response was stored");
});

test("stream through the SDK: text deltas with their snapshots, and the final response equals the stored one", async () => {
  const deltas: Array<[string, string]> = [];
  const stream = openai.responses.stream({ model: "chat", input: "Hi" });
  stream.on("response.output_text.delta", (event) => deltas.push([event.delta, event.snapshot]));
  const final = await stream.finalResponse();
  assert.deepEqual(deltas, [
    ["Hello", "Hello"],
    [" world", "Hello world"],
  ]);
  assert.equal(final.output_text, "Hello world");
  assert.equal(final.status, "completed");
  assert.deepEqual(final.usage, USAGE);
  const stored = await openai.responses.retrieve(final.id);
  // The stream helper adds its parse results (`parsed`, `output_parsed`) to what it accumulated.
  const unparsed = JSON.parse(JSON.stringify(final, (key, value: unknown) => (key === "parsed" || key === "output_parsed" ? undefined : value))) as unknown;
  assert.deepEqual(stored, unparsed, "the accumulated response is the stored one");

  server.engine.script = { tokens: ["a", "b", "c"] };
  const cut = await openai.responses.stream({ model: "chat", input: "Hi", max_output_tokens: 2 }).finalResponse();
  assert.equal(cut.status, "incomplete", "response.incomplete ends a stream cut by max_output_tokens");
  assert.deepEqual(cut.incomplete_details, { reason: "max_output_tokens" });
});

test("a prompt that does not fit: response.failed with context_length_exceeded after the response began; a 400 without stream", async () => {
  server.engine.script = { failBeforeFirst: new ContextOverflowError("the conversation takes 5000 tokens, more than the context window of 4096") };
  const response = await postJson(server.baseUrl, "/v1/responses", { model: "chat", input: "Hi", stream: true });
  assert.equal(response.status, 200);
  const events = await readEvents(response);
  assert.deepEqual(
    events.map((e) => [e.event, e.data.sequence_number]),
    [
      ["response.created", 0],
      ["response.in_progress", 1],
      ["response.failed", 2],
    ],
  );
  const failed = events[2]?.data.response as OpenAI.Responses.Response;
  assert.equal(failed.status, "failed");
  assert.deepEqual(failed.error, { code: "context_length_exceeded", message: "the conversation takes 5000 tokens, more than the context window of 4096" });
  assert.deepEqual(failed.output, []);
  await assert.rejects(openai.responses.retrieve(failed.id), OpenAI.NotFoundError, "a failed response is not stored");

  const whole = await postJson(server.baseUrl, "/v1/responses", { model: "chat", input: "Hi" });
  assert.equal(whole.status, 400);
  assert.equal((await errorOf(whole)).code, "context_overflow");
});

test("a failure mid-stream: response.failed with the output so far; the SDK's final response says failed", async () => {
  server.engine.script = { tokens: ["one", "two", "three"], failAfter: { events: 1, error: new GenerationError("the engine broke") } };
  const events = await readEvents(await postJson(server.baseUrl, "/v1/responses", { model: "chat", input: "Hi", stream: true }));
  assert.deepEqual(
    events.map((e) => e.event),
    ["response.created", "response.in_progress", "response.output_item.added", "response.content_part.added", "response.output_text.delta", "response.failed"],
  );
  const failed = events.at(-1)?.data.response as OpenAI.Responses.Response;
  assert.deepEqual(failed.error, { code: "server_error", message: "the engine broke" });
  assert.deepEqual(
    failed.output.map((item) => item.type === "message" && [item.status, item.content]),
    [["incomplete", [{ type: "output_text", text: "one", annotations: [], logprobs: [] }]]],
  );

  server.engine.script = { failBeforeFirst: new QueueFullError(1) };
  const busy = await openai.responses.stream({ model: "chat", input: "Hi" }).finalResponse();
  assert.equal(busy.status, "failed");
  assert.equal(busy.error?.code, "rate_limit_exceeded", "a full queue tells clients to retry later");
});

test("failures before the stream begins are HTTP errors in OpenAI's shape, naming the field", async () => {
  const cases: Array<[Record<string, unknown>, number, RegExp]> = [
    [{ tools: [{ type: "web_search" }] }, 400, /^tools\[0\]\.type: "web_search" tools are not supported/],
    [{ tools: [weather, { type: "file_search", vector_store_ids: [] }] }, 400, /^tools\[1\]\.type: "file_search" tools are not supported/],
    [{ tools: [{ type: "computer_use_preview" }] }, 400, /^tools\[0\]\.type: "computer_use_preview"/],
    [{ tools: [{ type: "code_interpreter" }] }, 400, /^tools\[0\]\.type: "code_interpreter"/],
    [{ tools: [{ type: "mcp", server_label: "x" }] }, 400, /^tools\[0\]\.type: "mcp"/],
    [{ tools: [{ type: "local_shell" }] }, 400, /^tools\[0\]\.type: "local_shell"/],
    [{ tools: [{ type: "function" }] }, 400, /^tools\[0\]\.name: /],
    [{ tool_choice: "required" }, 400, /^tool_choice: "required" needs tools/],
    [{ tools: [weather], tool_choice: { type: "function", name: "nope" } }, 400, /^tool_choice\.name: no tool is named "nope"/],
    [{ tools: [weather], tool_choice: { type: "web_search_preview" } }, 400, /^tool_choice\.type: "web_search_preview" is not supported/],
    [{ input: [{ type: "computer_call", call_id: "c" }] }, 400, /^input\[0\]\.type: "computer_call" items are not supported/],
    [{ input: ["Hi", { type: "web_search_call" }] }, 400, /^input\[0\]: expected an input item object/],
    [{ input: [{ role: "user", content: "Hi" }, { type: "local_shell_call" }] }, 400, /^input\[1\]\.type: "local_shell_call" items are not supported/],
    [{ input: [{ role: "wizard", content: "x" }] }, 400, /^input\[0\]\.role: /],
    [{ input: [{ type: "function_call", call_id: "c", name: "f", arguments: "{bad" }] }, 400, /^input\[0\]\.arguments: not valid JSON/],
    [{ input: [{ role: "user", content: [{ type: "input_file", file_id: "f" }] }] }, 400, /^input\[0\]\.content\[0\]\.type: "input_file" parts are not supported/],
    [{ input: [{ role: "user", content: [{ type: "input_image", image_url: "data:image/png;base64,aGk=" }] }] }, 400, /^input\[0\]\.content\[0\]: "chat" does not support images/],
    [{ input: [] }, 400, /^input: expected a string or input items/],
    [{ input: undefined }, 400, /^input: /],
    [{ text: { format: { type: "xml" } } }, 400, /^text\.format\.type: /],
    [{ reasoning: { effort: "extreme" } }, 400, /^reasoning\.effort: /],
    [{ reasoning: { effort: "high" } }, 400, /"chat" does not support thinking/],
    [{ max_output_tokens: 0 }, 400, /^max_output_tokens: must be at least 1/],
    [{ temperature: 3 }, 400, /^temperature: must be between 0 and 2/],
    [{ truncation: "sometimes" }, 400, /^truncation: /],
    [{ background: true }, 400, /^background: background responses are not supported/],
    [{ conversation: "conv_1" }, 400, /^conversation: /],
    [{ prompt: { id: "pmpt_1" } }, 400, /^prompt: /],
    [{ model: "embedder" }, 400, /^"embedder" does not support chat$/],
    [{ model: "no-such-model" }, 404, /^model "no-such-model" not found/],
    [{ previous_response_id: "resp_gone" }, 404, /^previous_response_id: response "resp_gone" not found/],
    [{ input: [{ role: "user", content: "Hi" }, { type: "item_reference", id: "msg_gone" }] }, 404, /^input\[1\]: item "msg_gone" not found/],
  ];
  for (const [fields, status, message] of cases) {
    const response = await postJson(server.baseUrl, "/v1/responses", { model: "chat", input: "Hi", stream: true, ...fields });
    assert.equal(response.status, status, JSON.stringify(fields));
    const error = await errorOf(response);
    assert.match(error.message, message, JSON.stringify(fields));
    assert.equal(error.type, status === 404 ? "not_found_error" : "invalid_request_error", JSON.stringify(fields));
  }
  await assert.rejects(openai.responses.create({ model: "chat", input: "Hi", previous_response_id: "resp_gone" }), (error: unknown) => {
    assert.ok(error instanceof OpenAI.NotFoundError, String(error));
    assert.equal(error.code, "response_not_found");
    return true;
  });
  assert.equal((await postJson(server.baseUrl, "/v1/responses", { model: "chat", input: "Hi", background: false, max_tool_calls: 3, text: { verbosity: "low" } })).status, 200, "harmless fields are accepted");
});

test("GET returns the stored response; DELETE forgets it; store: false keeps nothing", async () => {
  const created = await openai.responses.create({ model: "chat", input: "Hi" });
  const { output_text: _text, ...answered } = created;
  const got = await fetch(`${server.baseUrl}/v1/responses/${created.id}`);
  assert.equal(got.status, 200);
  assert.deepEqual(await got.json(), answered, "exactly the response as answered");
  const deleted = await fetch(`${server.baseUrl}/v1/responses/${created.id}`, { method: "DELETE" });
  assert.equal(deleted.status, 200);
  assert.deepEqual(await deleted.json(), { id: created.id, object: "response", deleted: true });
  for (const method of ["GET", "DELETE"]) {
    const gone = await fetch(`${server.baseUrl}/v1/responses/${created.id}`, { method });
    assert.equal(gone.status, 404, method);
    const error = await errorOf(gone);
    assert.equal(error.code, "response_not_found");
    assert.match(error.message, new RegExp(`^response "${created.id}" not found`));
  }
  await assert.rejects(openai.responses.create({ model: "chat", input: "Again", previous_response_id: created.id }), OpenAI.NotFoundError, "a deleted response cannot be continued");

  const unstored = await openai.responses.create({ model: "chat", input: "Hi", store: false });
  assert.equal((unstored as { store?: boolean }).store, false);
  assert.equal((await fetch(`${server.baseUrl}/v1/responses/${unstored.id}`)).status, 404);
  assert.equal((await fetch(`${server.baseUrl}/v1/responses/resp_never`)).status, 404);
});

test("previous_response_id: the stored conversation and its output come first; instructions are not carried over", async () => {
  server.engine.script = { tokens: ["First"] };
  const first = await openai.responses.create({ model: "chat", instructions: "Be terse.", input: "Hi" });
  server.engine.script = { tokens: ["Second"] };
  const second = await openai.responses.create({ model: "chat", previous_response_id: first.id, input: [{ role: "user", content: "And?" }] });
  assert.equal(second.previous_response_id, first.id);
  assert.deepEqual(server.engine.last("chat")?.messages, [
    { role: "user", content: "Hi" },
    { role: "assistant", content: "First" },
    { role: "user", content: "And?" },
  ]);
  server.engine.script = { tokens: ["Third"] };
  await openai.responses.create({ model: "chat", previous_response_id: second.id, input: "More", instructions: "Be kind." });
  assert.deepEqual(server.engine.last("chat")?.messages, [
    { role: "system", content: "Be kind." },
    { role: "user", content: "Hi" },
    { role: "assistant", content: "First" },
    { role: "user", content: "And?" },
    { role: "assistant", content: "Second" },
    { role: "user", content: "More" },
  ]);
  // Continuing needs no new input.
  await openai.responses.create({ model: "chat", previous_response_id: first.id });
  assert.deepEqual(server.engine.last("chat")?.messages, [
    { role: "user", content: "Hi" },
    { role: "assistant", content: "First" },
  ]);
});

test("item_reference: output items of stored responses resolve by id, as the Vercel AI SDK sends them", async () => {
  server.engine.script = { tokens: ["Let me check."], toolCalls: [{ id: "call_9", name: "get_weather", arguments: { city: "Paris" } }] };
  const first = await openai.responses.create({ model: "chat", input: "Weather in Paris?", tools: [weather] });
  const ids = first.output.map((item) => item.id ?? "");
  assert.equal(ids.length, 2);
  await openai.responses.create({
    model: "chat",
    input: [
      { role: "user", content: "Weather in Paris?" },
      ...ids.map((id) => ({ type: "item_reference" as const, id })),
      { type: "function_call_output", call_id: "call_9", output: "sunny" },
    ],
    tools: [weather],
  });
  assert.deepEqual(server.engine.last("chat")?.messages, [
    { role: "user", content: "Weather in Paris?" },
    { role: "assistant", content: "Let me check.", toolCalls: [{ id: "call_9", name: "get_weather", arguments: { city: "Paris" } }] },
    { role: "tool", content: "sunny", toolCallId: "call_9", toolName: "get_weather" },
  ]);
  await fetch(`${server.baseUrl}/v1/responses/${first.id}`, { method: "DELETE" });
  const gone = await postJson(server.baseUrl, "/v1/responses", { model: "chat", input: [{ type: "item_reference", id: ids[0] }] });
  assert.equal(gone.status, 404, "the items of a deleted response are gone too");
  assert.match((await errorOf(gone)).message, new RegExp(`^input\\[0\\]: item "${ids[0]}" not found`));
});

test("a client that leaves mid-stream stops the generation", async () => {
  server.engine.script = { tokens: ["tick "], endless: true, delayMs: 20 };
  const abortsBefore = server.engine.aborts;
  const controller = new AbortController();
  const stream = await openai.responses.create({ model: "chat", input: "Hi", stream: true }, { signal: controller.signal });
  let deltas = 0;
  try {
    for await (const event of stream) {
      if (event.type === "response.output_text.delta" && ++deltas === 2) controller.abort();
    }
  } catch {
    // the SDK may end the iteration, or throw its abort error
  }
  assert.equal(deltas, 2);
  await eventually(() => server.engine.aborts > abortsBefore, "the generation saw the abort");
  await eventually(() => server.engine.running === 0, "the generation stopped");
});

test("retention: a response older than AI_SERVER_RESPONSES_RETENTION is 404 everywhere; 0 stores nothing", async () => {
  const short = await startFakeServer({ responsesRetentionMs: "1s" });
  const off = await startFakeServer({ responsesRetentionMs: "0" });
  try {
    const client = new OpenAI({ baseURL: `${short.baseUrl}/v1`, apiKey: "unused", maxRetries: 0 });
    const created = await client.responses.create({ model: "chat", input: "Hi" });
    await sleep(1100);
    assert.equal((await fetch(`${short.baseUrl}/v1/responses/${created.id}`)).status, 404);
    assert.equal((await fetch(`${short.baseUrl}/v1/responses/${created.id}`, { method: "DELETE" })).status, 404);
    const continued = await postJson(short.baseUrl, "/v1/responses", { model: "chat", previous_response_id: created.id, input: "More" });
    assert.equal(continued.status, 404);
    const referenced = await postJson(short.baseUrl, "/v1/responses", { model: "chat", input: [{ type: "item_reference", id: created.output[0]?.id }] });
    assert.equal(referenced.status, 404);

    const unkept = await new OpenAI({ baseURL: `${off.baseUrl}/v1`, apiKey: "unused", maxRetries: 0 }).responses.create({ model: "chat", input: "Hi" });
    assert.equal((unkept as { store?: boolean }).store, false, "the response says it is not stored");
    assert.equal((await fetch(`${off.baseUrl}/v1/responses/${unkept.id}`)).status, 404);
  } finally {
    await Promise.all([short.close(), off.close()]);
  }
});
