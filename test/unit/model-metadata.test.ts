/**
 * Capabilities derived from a GGUF header: `thinking` from the chat template's marks of reasoning, and a rank-pooling
 * model (a reranker) as `embedding` only. Headers written with the fixture writer, read back with the real reader.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { isReranker } from "../../src/domain/model.js";
import { isThinkingTemplate, modelMetadataFrom } from "../../src/gguf/model-metadata.js";
import { readGguf } from "../../src/gguf/read-gguf.js";
import { gguf } from "../fixtures/gguf-writer.js";
import { CHATML_TEMPLATE, ensureFixtures, QWEN25_TEMPLATE, QWEN3_TEMPLATE, type FixturePaths } from "../fixtures/models.js";
import { writeFakeModel, type FakeModelFile } from "../helpers/gguf-files.js";

let dir: string;
let fixtures: FixturePaths;

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "model-metadata-test-"));
  fixtures = await ensureFixtures();
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

let written = 0;
async function capabilitiesOf(options: FakeModelFile): Promise<string[]> {
  const file = path.join(dir, `m${written++}.gguf`);
  await writeFakeModel(file, options);
  return modelMetadataFrom(await readGguf(file)).capabilities;
}

const withTemplate = (template: string): FakeModelFile => ({ extraMetadata: { "tokenizer.chat_template": gguf.string(template) } });

test("a Qwen3-style template (enable_thinking, <think>, reasoning_content) gives the thinking capability", async () => {
  assert.deepEqual(await capabilitiesOf(withTemplate(QWEN3_TEMPLATE)), ["completion", "tools", "thinking"]);
});

test("templates without reasoning marks do not: ChatML, Qwen 2.5, the fake model's", async () => {
  for (const template of [CHATML_TEMPLATE, QWEN25_TEMPLATE]) assert.deepEqual(await capabilitiesOf(withTemplate(template)), ["completion", "tools"]);
  assert.deepEqual(await capabilitiesOf({}), ["completion", "tools"]);
});

test("each mark counts alone, in the spellings templates use", () => {
  const thinking = [
    "{{ '<|im_start|>assistant\\n<think>\\n' }}", // DeepSeek-R1, QwQ: the generation prompt opens the block
    "{%- if enable_thinking is defined and enable_thinking is false %}{{ '/no_think' }}{% endif %}",
    "{% if message.reasoning_content %}{{ message.reasoning_content }}{% endif %}",
    "{{ '<seed:think>' + message.content }}",
    "[SYSTEM_PROMPT]{{ m }}[/SYSTEM_PROMPT][THINK]",
    "{%- if message.thinking %}<|channel|>analysis<|message|>{{ message.thinking }}{% endif %}",
    "{%- if message['reasoning'] %}{{ message['reasoning'] }}{% endif %}",
    '{%- if message["thinking"] is defined %}x{% endif %}',
  ];
  for (const template of thinking) assert.equal(isThinkingTemplate(template), true, template);
});

test("prose about thinking or reasoning, and look-alike names, do not count", () => {
  const plain = [
    "Think step by step and explain your reasoning before you answer.",
    "{{ 'You may think out loud.' }}{{ message.content }}",
    "{% set reasoning_effort = reasoning_effort or 'medium' %}", // an effort knob alone is not a reasoning format
    "{{ message.thinking_budget }}{{ message.reasoning_effort }}",
    "{{ '<thinking>' }}{{ enable_thinking_tokens }}",
    "",
  ];
  for (const template of plain) assert.equal(isThinkingTemplate(template), false, template);
});

test("an embedding model stays embedding-only even with a thinking template; a rank-pooling header is a reranker", async () => {
  const bert = { architecture: "bert", ...withTemplate(QWEN3_TEMPLATE) };
  assert.deepEqual(await capabilitiesOf(bert), ["embedding"]);
  const rank: FakeModelFile = { extraMetadata: { "llama.pooling_type": gguf.u32(4), "tokenizer.chat_template": gguf.string(QWEN3_TEMPLATE) } };
  const file = path.join(dir, "rank.gguf");
  await writeFakeModel(file, rank);
  const metadata = modelMetadataFrom(await readGguf(file));
  assert.deepEqual(metadata.capabilities, ["embedding"]);
  assert.equal(isReranker(metadata), true);
});

test("the generated fixtures: thinking is a thinking chat model, the reranker an embedding-only reranker, the others neither", async () => {
  const capabilities = async (file: string) => modelMetadataFrom(await readGguf(file));
  const thinking = await capabilities(fixtures.thinking);
  assert.equal(thinking.architecture, "qwen3");
  assert.deepEqual(thinking.capabilities, ["completion", "tools", "thinking"]);
  const reranker = await capabilities(fixtures.reranker);
  assert.deepEqual([reranker.architecture, reranker.capabilities, isReranker(reranker)], ["qwen3", ["embedding"], true]);
  for (const file of [fixtures.chat, fixtures.qwenToolCall, fixtures.qwenParallelTools, fixtures.tiny]) {
    const metadata = await capabilities(file);
    assert.deepEqual([metadata.capabilities, isReranker(metadata)], [["completion", "tools"], false], file);
  }
});
