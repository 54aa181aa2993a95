import assert from "node:assert/strict";
import { test } from "node:test";
import { InvalidModelNameError } from "../../src/domain/errors.js";
import { formatModelName, normalizeModelName, parseModelName } from "../../src/domain/model-name.js";

test("parseModelName splits [host/][namespace/]model[:tag]", () => {
  const cases: Array<[string, ReturnType<typeof parseModelName>]> = [
    ["llama3.2", { model: "llama3.2", tag: "latest" }],
    ["llama3.2:1b", { model: "llama3.2", tag: "1b" }],
    ["qwen2.5-coder:0.5b-instruct-q8_0", { model: "qwen2.5-coder", tag: "0.5b-instruct-q8_0" }],
    ["library/llama3.2", { namespace: "library", model: "llama3.2", tag: "latest" }],
    ["user/my_model:v2", { namespace: "user", model: "my_model", tag: "v2" }],
    ["hf.co/bartowski/Llama-3.2-1B-GGUF:Q4_K_M", { host: "hf.co", namespace: "bartowski", model: "Llama-3.2-1B-GGUF", tag: "Q4_K_M" }],
    ["localhost:5000/ns/model", { host: "localhost:5000", namespace: "ns", model: "model", tag: "latest" }],
    ["  padded:tag  ", { model: "padded", tag: "tag" }],
    ["m:_underscore", { model: "m", tag: "_underscore" }],
  ];
  for (const [input, expected] of cases) assert.deepEqual(parseModelName(input), expected, input);
});

test("parseModelName rejects malformed names, including path tricks", () => {
  const bad = ["", "   ", "a/b/c/d", "..", "../etc", "ns/..", "model:", ":tag", "mo del", "model:ta g", "-model", "model:-tag",
    "model:a:b", "x".repeat(97), "model:" + "t".repeat(129), "a\\b", "model/", "/model", "bad_host!/ns/model"];
  for (const input of bad) assert.throws(() => parseModelName(input), InvalidModelNameError, JSON.stringify(input));
});

test("formatModelName drops the default library namespace and always shows the tag", () => {
  assert.equal(formatModelName({ model: "llama3.2", tag: "latest" }), "llama3.2:latest");
  assert.equal(formatModelName({ namespace: "library", model: "llama3.2", tag: "1b" }), "llama3.2:1b");
  assert.equal(formatModelName({ namespace: "user", model: "m", tag: "latest" }), "user/m:latest");
  assert.equal(formatModelName({ host: "hf.co", namespace: "u", model: "r", tag: "Q8_0" }), "hf.co/u/r:Q8_0");
});

test("normalizeModelName gives one spelling per model", () => {
  assert.equal(normalizeModelName("llama3.2"), "llama3.2:latest");
  assert.equal(normalizeModelName("library/llama3.2:latest"), "llama3.2:latest");
  assert.equal(normalizeModelName("llama3.2:latest"), "llama3.2:latest");
});
