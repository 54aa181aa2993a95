import assert from "node:assert/strict";
import { after, before, beforeEach, test } from "node:test";
import { startFakeServer, type FakeServer } from "../helpers/fake-server.js";
import { postJson, readNdjson } from "../helpers/start-server.js";

// HTTP behaviour of /api/chat on the fake engine; real output is proven in real-inference.test.ts.
let server: FakeServer;
before(async () => {
  server = await startFakeServer();
});
after(() => server.close());
beforeEach(() => {
  server.engine.script = {};
});

const weather = { type: "function", function: { name: "get_weather", description: "Weather in a city", parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] } } };

test("streams content deltas in message.content, then a final chunk with done_reason and metrics", async () => {
  const response = await postJson(server.baseUrl, "/api/chat", { model: "chat", messages: [{ role: "user", content: "Hi" }] });
  assert.equal(response.headers.get("content-type"), "application/x-ndjson");
  const lines = await readNdjson(response);
  assert.deepEqual(lines.map((l) => l.message), [
    { role: "assistant", content: "Hello" },
    { role: "assistant", content: " world" },
    { role: "assistant", content: "" },
  ]);
  const last = lines.at(-1) ?? {};
  assert.equal(last.done, true);
  assert.equal(last.done_reason, "stop");
  assert.equal(last.eval_count, 2);
  assert.equal(last.prompt_eval_count, 3);
  assert.equal("prompt_eval_count" in (lines[0] ?? {}), false, "metrics only on the final chunk (LangChain sums them)");
});

test("tool calls: whole, in a done:false chunk, with object arguments and function.index; all of them when not streaming", async () => {
  server.engine.script = {
    tokens: [],
    toolCalls: [
      { name: "get_weather", arguments: { city: "Paris" } },
      { name: "get_weather", arguments: { city: "London" } },
    ],
  };
  const body = { model: "chat", messages: [{ role: "user", content: "Weather?" }], tools: [weather] };
  const lines = await readNdjson(await postJson(server.baseUrl, "/api/chat", body));
  assert.equal(lines.length, 3);
  assert.deepEqual(lines[0]?.message, { role: "assistant", content: "", tool_calls: [{ function: { index: 0, name: "get_weather", arguments: { city: "Paris" } } }] });
  assert.equal(lines[0]?.done, false);
  assert.deepEqual(lines[1]?.message, { role: "assistant", content: "", tool_calls: [{ function: { index: 1, name: "get_weather", arguments: { city: "London" } } }] });
  assert.equal(lines[2]?.done_reason, "stop");

  const single = (await (await postJson(server.baseUrl, "/api/chat", { ...body, stream: false })).json()) as { message: unknown };
  assert.deepEqual(single.message, {
    role: "assistant",
    content: "",
    tool_calls: [
      { function: { index: 0, name: "get_weather", arguments: { city: "Paris" } } },
      { function: { index: 1, name: "get_weather", arguments: { city: "London" } } },
    ],
  });
  const request = server.engine.last("chat");
  assert.deepEqual(request?.tools, [{ name: "get_weather", description: "Weather in a city", parameters: weather.function.parameters }]);
});

test("a tool-calling conversation (as LangChain sends it) reaches the engine as domain messages", async () => {
  await postJson(server.baseUrl, "/api/chat", {
    model: "chat",
    stream: false,
    tools: [weather],
    messages: [
      { role: "user", content: "Weather in Paris?" },
      { role: "assistant", content: "", tool_calls: [{ id: "abc", type: "function", function: { name: "get_weather", arguments: { city: "Paris" } } }] },
      { role: "tool", content: "22C" },
    ],
  });
  assert.deepEqual(server.engine.last("chat")?.messages, [
    { role: "user", content: "Weather in Paris?" },
    { role: "assistant", content: "", toolCalls: [{ id: "abc", name: "get_weather", arguments: { city: "Paris" } }] },
    { role: "tool", content: "22C" },
  ]);
});

test("format, options and the model's system prompt reach the engine", async () => {
  await postJson(server.baseUrl, "/api/create", { model: "sys", from: "chat", system: "Be terse.", stream: false });
  const schema = { type: "object", properties: { age: { type: "integer" } }, required: ["age"] };
  await postJson(server.baseUrl, "/api/chat", { model: "sys", messages: [{ role: "user", content: "Age?" }], format: schema, options: { temperature: 0, seed: 1 }, stream: false });
  assert.deepEqual(server.engine.last("chat"), {
    messages: [
      { role: "system", content: "Be terse." },
      { role: "user", content: "Age?" },
    ],
    format: { type: "json_schema", schema },
    sampling: { temperature: 0, seed: 1 },
  });
});

test("empty messages load the model; with keep_alive 0 they unload it", async () => {
  const load = (await (await postJson(server.baseUrl, "/api/chat", { model: "chat", messages: [], stream: false })).json()) as Record<string, unknown>;
  assert.equal(load.done_reason, "load");
  assert.deepEqual(load.message, { role: "assistant", content: "" });
  const unload = await readNdjson(await postJson(server.baseUrl, "/api/chat", { model: "chat", keep_alive: 0 }));
  assert.equal(unload.length, 1);
  assert.equal(unload[0]?.done_reason, "unload");
});

test("embedding models cannot chat; images need vision; bad messages are 400", async () => {
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ model: "embedder", messages: [{ role: "user", content: "x" }] }, /^"embedder" does not support chat$/],
    [{ model: "chat", messages: [{ role: "user", content: "x", images: ["aGk="] }] }, /^"chat" does not support vision$/],
    [{ model: "chat", messages: [{ role: "wizard", content: "x" }] }, /^messages\[0\]\.role: /],
    [{ model: "chat", messages: [{ role: "assistant", tool_calls: [{ function: { name: "f", arguments: "{bad" } }] }] }, /arguments: not valid JSON/],
  ];
  for (const [body, error] of cases) {
    const response = await postJson(server.baseUrl, "/api/chat", body);
    assert.equal(response.status, 400, JSON.stringify(body));
    assert.match(((await response.json()) as { error: string }).error, error);
  }
});

test("think, logprobs, truncate and shift reach the engine as domain requests; absent, they stay absent", async () => {
  const sent = async (extra: Record<string, unknown>) => {
    const response = await postJson(server.baseUrl, "/api/chat", { model: "chat", messages: [{ role: "user", content: "Hi" }], stream: false, ...extra });
    assert.equal(response.status, 200, JSON.stringify(extra));
    const { thinking, logprobs, truncate, shift } = server.engine.last("chat") ?? {};
    return { thinking, logprobs, truncate, shift };
  };
  const none = { thinking: undefined, logprobs: undefined, truncate: undefined, shift: undefined };
  assert.deepEqual(await sent({}), none);
  assert.deepEqual(await sent({ think: false }), { ...none, thinking: { enabled: false } }, "think:false suits a model that does not think");
  assert.deepEqual(await sent({ logprobs: true, top_logprobs: 2 }), { ...none, logprobs: { top: 2 } });
  assert.deepEqual(await sent({ truncate: false, shift: false }), { ...none, truncate: false, shift: false });
  assert.deepEqual(await sent({ truncate: true, shift: true }), { ...none, truncate: true, shift: true });

  const cases: Array<[Record<string, unknown>, string]> = [
    [{ think: true }, '"chat" does not support thinking'],
    [{ think: "low" }, '"chat" does not support thinking'],
    [{ logprobs: true, top_logprobs: 21 }, "top_logprobs: must be between 0 and 20"],
    [{ truncate: "no" }, "truncate: Invalid input: expected boolean, received string"],
  ];
  for (const [extra, error] of cases) {
    const response = await postJson(server.baseUrl, "/api/chat", { model: "chat", messages: [{ role: "user", content: "Hi" }], ...extra });
    assert.equal(response.status, 400, JSON.stringify(extra));
    assert.deepEqual(await response.json(), { error }, JSON.stringify(extra));
  }
});
