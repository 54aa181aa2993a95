import assert from "node:assert/strict";
import { test } from "node:test";
import { InvalidRequestError } from "../../src/domain/errors.js";
import { chatSchema, createSchema, embedSchema, generateSchema, parseBody, requestedModel } from "../../src/api/ollama/schemas.js";

function rejects(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (e: unknown) => e instanceof InvalidRequestError && message.test(e.message), String(message));
}

test("unknown fields and obsolete options (as LangChain and ollama-js send them) are tolerated and dropped", () => {
  const body = parseBody(chatSchema, {
    model: "m",
    messages: [{ role: "user", content: "hi", extra: 1 }],
    options: { numa: false, f16_kv: true, low_vram: false, mirostat: 0, mirostat_tau: 5, tfs_z: 1, penalize_newline: true, num_gpu: 99, vocab_only: false, num_thread: 4, temperature: 0.5 },
    unknown_field: { anything: true },
  });
  assert.deepEqual(body.options, { temperature: 0.5 });
  assert.deepEqual(body.messages, [{ role: "user", content: "hi" }]);
});

test("null counts as absent; integer options are truncated as Ollama does", () => {
  const body = parseBody(generateSchema, { model: "m", prompt: null, options: { seed: null, top_k: 40.7, num_predict: 10 } });
  assert.equal(body.prompt, undefined);
  assert.equal(body.options?.seed, undefined);
  assert.equal(body.options?.top_k, 40);
});

test("wrong types are a 400 naming the field and the reason", () => {
  rejects(() => parseBody(generateSchema, { model: "m", options: { temperature: "hot" } }), /^options\.temperature: .*expected number, received string$/);
  rejects(() => parseBody(generateSchema, { model: 5 }), /^model: .*expected string/);
  rejects(() => parseBody(generateSchema, { model: "m", stream: "yes" }), /^stream: .*expected boolean/);
  rejects(() => parseBody(chatSchema, { model: "m", messages: [{ role: "robot", content: "x" }] }), /^messages\[0\]\.role: /);
  rejects(() => parseBody(chatSchema, { model: "m", messages: "hi" }), /^messages: .*expected array/);
  rejects(() => parseBody(embedSchema, { model: "m", input: 5 }), /^input: expected a string or an array of strings$/);
  rejects(() => parseBody(embedSchema, { model: "m", input: ["a", 1] }), /^input: /);
  rejects(() => parseBody(embedSchema, { model: "m", dimensions: -3 }), /^dimensions: /);
  rejects(() => parseBody(generateSchema, { model: "m", format: 5 }), /^format: expected "json" or a JSON schema object$/);
  rejects(() => parseBody(generateSchema, { model: "m", keep_alive: true }), /^keep_alive: /);
  rejects(() => parseBody(createSchema, { model: "m", files: { "a.gguf": 1 } }), /^files\.a\.gguf: /);
});

test("several problems are all reported", () => {
  rejects(() => parseBody(generateSchema, { model: "m", prompt: 1, raw: "no" }), /prompt: .*; raw: /);
});

test("a body that is not a JSON object is refused", () => {
  rejects(() => parseBody(generateSchema, undefined), /^missing request body$/);
  rejects(() => parseBody(generateSchema, null), /^missing request body$/);
  rejects(() => parseBody(generateSchema, [1, 2]), /^request body must be a JSON object$/);
  rejects(() => parseBody(generateSchema, "text"), /^request body must be a JSON object$/);
});

test("`name` is accepted wherever `model` is; neither is a 400", () => {
  assert.equal(requestedModel({ model: "a" }), "a");
  assert.equal(requestedModel({ name: "b" }), "b");
  assert.equal(requestedModel({ model: "a", name: "b" }), "a");
  assert.equal(requestedModel({ model: "", name: "b" }), "b");
  rejects(() => requestedModel({}), /^model is required$/);
});

test("roles are lower-cased; message content and tool arguments have lenient shapes", () => {
  const body = parseBody(chatSchema, {
    model: "m",
    messages: [
      { role: "System", content: "s" },
      { role: "assistant", content: null, tool_calls: [{ type: "function", function: { name: "f", arguments: '{"a":1}' } }] },
    ],
  });
  assert.equal(body.messages?.[0]?.role, "system");
  assert.equal(body.messages?.[1]?.content, undefined);
  assert.equal(body.messages?.[1]?.tool_calls?.[0]?.function.arguments, '{"a":1}');
});
