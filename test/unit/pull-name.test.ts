import assert from "node:assert/strict";
import { test } from "node:test";
import { InvalidModelNameError } from "../../src/domain/errors.js";
import { parsePullName } from "../../src/pull/pull-name.js";

const REGISTRY = "https://registry.ollama.ai";

test("Hugging Face names: hf.co, huggingface.co, pasted URLs and owner/repo", () => {
  const cases: Array<[string, ReturnType<typeof parsePullName>]> = [
    ["hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M", { name: "hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M", source: { kind: "huggingface", repo: "bartowski/Llama-3.2-1B-Instruct-GGUF", tag: { text: "Q4_K_M" } } }],
    ["huggingface.co/Qwen/Qwen2.5-0.5B-Instruct-GGUF", { name: "hf.co/Qwen/Qwen2.5-0.5B-Instruct-GGUF:latest", source: { kind: "huggingface", repo: "Qwen/Qwen2.5-0.5B-Instruct-GGUF", tag: "default" } }],
    ["https://huggingface.co/Qwen/Qwen2.5-0.5B-Instruct-GGUF", { name: "hf.co/Qwen/Qwen2.5-0.5B-Instruct-GGUF:latest", source: { kind: "huggingface", repo: "Qwen/Qwen2.5-0.5B-Instruct-GGUF", tag: "default" } }],
    ["https://huggingface.co/o/r/blob/main/sub/r-q8_0.gguf", { name: "hf.co/o/r:r-q8_0.gguf", source: { kind: "huggingface", repo: "o/r", tag: { text: "r-q8_0.gguf" } } }],
    ["Qwen/Qwen2.5-0.5B-Instruct", { name: "Qwen/Qwen2.5-0.5B-Instruct:latest", source: { kind: "huggingface", repo: "Qwen/Qwen2.5-0.5B-Instruct", tag: "default" } }],
    ["owner/repo:auto", { name: "owner/repo:auto", source: { kind: "huggingface", repo: "owner/repo", tag: "auto" } }],
    ["owner/repo:LATEST", { name: "owner/repo:LATEST", source: { kind: "huggingface", repo: "owner/repo", tag: "default" } }],
  ];
  for (const [input, expected] of cases) assert.deepEqual(parsePullName(input, REGISTRY), expected, input);
});

test("Ollama names: no slash, ollama.com, and another registry host", () => {
  assert.deepEqual(parsePullName("llama3.2:1b", REGISTRY), {
    name: "llama3.2:1b",
    source: { kind: "ollama", registry: REGISTRY, namespace: "library", model: "llama3.2", tag: "1b" },
  });
  assert.deepEqual(parsePullName("llama3.2", "http://127.0.0.1:9"), {
    name: "llama3.2:latest",
    source: { kind: "ollama", registry: "http://127.0.0.1:9", namespace: "library", model: "llama3.2", tag: "latest" },
  });
  assert.deepEqual(parsePullName("ollama.com/library/qwen3:4b", REGISTRY).name, "qwen3:4b");
  assert.deepEqual(parsePullName("ollama.com/someone/model:v1", REGISTRY), {
    name: "ollama.com/someone/model:v1",
    source: { kind: "ollama", registry: REGISTRY, namespace: "someone", model: "model", tag: "v1" },
  });
  assert.deepEqual(parsePullName("registry.example:5000/ns/model", REGISTRY, { insecure: true }).source, {
    kind: "ollama",
    registry: "http://registry.example:5000",
    namespace: "ns",
    model: "model",
    tag: "latest",
  });
});

test("bad names are refused with the reason", () => {
  for (const input of ["", "a/b/c/d", "../x", "hf.co/onlyrepo", "https://example.com/o/r", "https://huggingface.co/", "o/r:bad tag"]) {
    assert.throws(() => parsePullName(input, REGISTRY), InvalidModelNameError, input);
  }
});
