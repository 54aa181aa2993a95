/** The quantization types and refusals, checked against llama.cpp's quantize tool itself where it is built. */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { test } from "node:test";
import { QUANTIZATION_TYPES, quantizationRefusal, quantizationType } from "../../src/quantize/types.js";
import { quantizeTool } from "./quantize-tool.js";

const tool = quantizeTool();

test("type names are case-insensitive, and the K-quants without a size letter mean the M mix, as the tool has it", () => {
  assert.equal(quantizationType("q4_K_M")?.name, "Q4_K_M");
  assert.equal(quantizationType("q8_0")?.name, "Q8_0");
  assert.equal(quantizationType(" bf16 ")?.name, "BF16");
  assert.equal(quantizationType("iq4_xs")?.name, "IQ4_XS");
  assert.equal(quantizationType("q4_k")?.name, "Q4_K_M");
  assert.equal(quantizationType("Q3_K")?.name, "Q3_K_M");
  assert.equal(quantizationType("q4"), undefined);
  assert.equal(quantizationType("copy"), undefined, "COPY makes no quantization");
});

test("refusals: unknown types, sources that are not F16/BF16/F32, types that need an importance matrix", () => {
  for (const source of ["F16", "BF16", "F32"]) assert.equal(quantizationRefusal("q4_K_M", source), undefined);
  assert.match(quantizationRefusal("q4_K_M", "Q8_0") ?? "", /^quantization is only supported for F16, BF16 and F32 models: this model is Q8_0$/);
  assert.match(quantizationRefusal("Q7_K", "F16") ?? "", /^unknown quantization type "Q7_K": expected one of Q1_0, .*, F32$/);
  for (const type of ["IQ1_S", "IQ1_M", "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ2_M", "IQ3_XXS", "Q2_K_S"]) {
    assert.match(quantizationRefusal(type, "F16") ?? "", new RegExp(`^${type} needs an importance matrix`));
  }
  for (const type of ["IQ3_S", "IQ3_M", "IQ3_XS", "IQ4_NL", "IQ4_XS", "Q2_K", "TQ1_0"]) assert.equal(quantizationRefusal(type, "BF16"), undefined);
});

test("the table lists exactly the types llama-quantize --help lists (less COPY and the aliases)", { skip: tool.skip }, async () => {
  const help = await new Promise<string>((resolve) => execFile(tool.binary!, ["--help"], (_error, stdout) => resolve(stdout))); // it exits 1 after its usage
  const listed = [...help.matchAll(/^\s+\d+\s+or\s+(\S+)\s+:/gm)].map((m) => m[1]);
  assert.ok(listed.includes("Q4_K_M"), help);
  const expected = listed.filter((name) => !["Q3_K", "Q4_K", "Q5_K"].includes(name ?? ""));
  assert.deepEqual(QUANTIZATION_TYPES.map((type) => type.name), expected);
});
