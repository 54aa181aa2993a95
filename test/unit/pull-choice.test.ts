import assert from "node:assert/strict";
import { test } from "node:test";
import { InsufficientMemoryError, UpstreamNotFoundError } from "../../src/domain/errors.js";
import { chooseFile } from "../../src/pull/choose.js";
import { ggufCandidates } from "../../src/pull/hub/gguf-candidates.js";
import type { HubFile } from "../../src/pull/hub/hub-client.js";
import { bitsPerWeight, quantizationOf } from "../../src/pull/quantization-names.js";

const MB = 1_000_000;

function file(path: string, size: number): HubFile {
  return { path, size, sha256: "0".repeat(64), gitOid: "1".repeat(40) };
}

const REPO = [
  file("README.md", 100),
  file("model-Q2_K.gguf", 30 * MB),
  file("model-Q4_K_M.gguf", 50 * MB),
  file("model-Q8_0.gguf", 80 * MB),
  file("model-F16.gguf", 150 * MB),
  file("mmproj-model-F16.gguf", 10 * MB),
  file("model.imatrix.gguf", 1 * MB),
];

/** Weights plus 10 MB of context and buffers; budget in MB. */
function choose(files: HubFile[], tag: Parameters<typeof chooseFile>[0]["tag"], budgetMb: number) {
  return chooseFile({ repo: "o/r", candidates: ggufCandidates(files), tag, budget: { ram: budgetMb * MB, vram: 0 }, needOf: (candidate, size = candidate.size) => ({ ram: size + 10 * MB, vram: 0 }) });
}

test("quantization labels are read from file names in every spelling", () => {
  const cases: Array<[string, string | undefined]> = [
    ["Llama-3.2-1B-Instruct-Q4_K_M.gguf", "Q4_K_M"],
    ["qwen2.5-0.5b-instruct-q8_0.gguf", "Q8_0"],
    ["Q8_0/split-Q8_0-00001-of-00003.gguf", "Q8_0"],
    ["model-fp16.gguf", "F16"],
    ["model.BF16.gguf", "BF16"],
    ["Model-UD-Q4_K_XL.gguf", "UD-Q4_K_XL"],
    ["model-IQ3_M.gguf", "IQ3_M"],
    ["model.gguf", undefined],
  ];
  for (const [name, expected] of cases) assert.equal(quantizationOf(name), expected, name);
  assert.ok(bitsPerWeight("F32") > bitsPerWeight("BF16") && bitsPerWeight("BF16") > bitsPerWeight("Q8_0"));
  assert.ok(bitsPerWeight("Q8_0") > bitsPerWeight("Q4_K_M") && bitsPerWeight("Q4_K_M") > bitsPerWeight("Q2_K"));
});

test("candidates leave out projectors and imatrix files and join complete split models", () => {
  const candidates = ggufCandidates([
    ...REPO,
    file("Q8_0/big-Q8_0-00002-of-00002.gguf", 40 * MB),
    file("Q8_0/big-Q8_0-00001-of-00002.gguf", 40 * MB),
    file("Q6_K/big-Q6_K-00001-of-00002.gguf", 30 * MB), // its second part is missing
  ]);
  assert.deepEqual(candidates.map((c) => c.file).sort(), ["Q8_0/big-Q8_0-00001-of-00002.gguf", "model-F16.gguf", "model-Q2_K.gguf", "model-Q4_K_M.gguf", "model-Q8_0.gguf"]);
  const split = candidates.find((c) => c.files.length === 2);
  assert.deepEqual(split?.files.map((f) => f.path), ["Q8_0/big-Q8_0-00001-of-00002.gguf", "Q8_0/big-Q8_0-00002-of-00002.gguf"]);
  assert.equal(split?.size, 80 * MB);
});

test("no tag: Q4_K_M when it fits, else the most precise file that fits", () => {
  assert.equal(choose(REPO, "default", 1000).candidate.file, "model-Q4_K_M.gguf");
  assert.match(choose(REPO, "default", 1000).reason, /Q4_K_M, the default/);
  const small = choose(REPO, "default", 45);
  assert.equal(small.candidate.file, "model-Q2_K.gguf");
  assert.match(small.reason, /Q2_K, the most precise file that fits.*Q4_K_M would need/);
  const noDefault = choose(REPO.filter((f) => !f.path.includes("Q4_K_M")), "default", 100);
  assert.equal(noDefault.candidate.file, "model-Q8_0.gguf");
});

test(":auto takes the most precise file that fits, floats first", () => {
  assert.equal(choose(REPO, "auto", 1000).candidate.file, "model-F16.gguf");
  assert.equal(choose(REPO, "auto", 100).candidate.file, "model-Q8_0.gguf");
  const choice = choose(REPO, "auto", 100);
  assert.deepEqual(choice.alternatives.map((a) => [a.quantization, a.fits]), [["F16", false], ["Q8_0", true], ["Q4_K_M", true], ["Q2_K", true]]);
});

test("nothing fits: the error names the smallest file, what it needs and the budget", () => {
  assert.throws(() => choose(REPO, "auto", 20), (error: Error) => error instanceof InsufficientMemoryError && /smallest, Q2_K/.test(error.message) && /:Q2_K/.test(error.message));
});

test("a named quantization is taken even when it does not fit, with a warning", () => {
  const choice = choose(REPO, { text: "q8_0" }, 50);
  assert.equal(choice.candidate.file, "model-Q8_0.gguf");
  assert.equal(choice.warnings.length, 1);
  assert.match(choice.warnings[0] ?? "", /more than the memory budget/);
});

test("a file name is a tag too; an unknown tag lists what the repository has", () => {
  assert.equal(choose(REPO, { text: "model-Q8_0.gguf" }, 1000).candidate.file, "model-Q8_0.gguf");
  assert.equal(choose(REPO, { text: "model-q2_k" }, 1000).candidate.file, "model-Q2_K.gguf");
  assert.throws(() => choose(REPO.filter((f) => !f.path.includes("F16")), { text: "Q5_K_M" }, 1000), (error: Error) => error instanceof UpstreamNotFoundError && /F16|Q8_0, Q4_K_M, Q2_K/.test(error.message));
});

test("a quantization the repository lacks is made here from its F16 file", () => {
  const choice = choose(REPO, { text: "Q5_K_M" }, 1000);
  assert.equal(choice.candidate.file, "model-F16.gguf");
  assert.equal(choice.quantizeTo, "Q5_K_M");
  assert.match(choice.reason, /Q5_K_M is not in the repository: downloading F16/);
});
