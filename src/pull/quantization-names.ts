import { quantizationType } from "../quantize/types.js";

/**
 * Quantization labels as they appear in GGUF file names on the Hub ("…-Q4_K_M.gguf", "…-q8_0.gguf",
 * "Q8_0/…-00001-of-00002.gguf", "…-UD-Q4_K_XL.gguf", "…-fp16.gguf"), and how precise each is (by the bits per weight
 * of llama.cpp's types: unpacked floats rank above every quantization).
 */

/** The default quantization, when a repository has it and it fits (Ollama's and llama.cpp's default too). */
export const DEFAULT_QUANTIZATION = "Q4_K_M";

const LABEL = /(?:^|[-._/])((?:UD-)?(?:I?Q[1-8](?:_[A-Z0-9]{1,4}){0,2}|TQ[12]_0|MXFP4|BF16|FP?16|FP?32))(?=$|[-._/])/gi;

/**
 * The quantization a file's path names, upper-cased ("q4_k_m" → "Q4_K_M", "fp16" → "F16"), or undefined. The
 * last label wins ("Q8_0/model-Q8_0-00001-of-00002.gguf" → "Q8_0"; "model-f16-Q4_K_M.gguf" → "Q4_K_M").
 */
export function quantizationOf(filePath: string): string | undefined {
  const stem = filePath.replace(/\.gguf$/i, "").replace(/-\d{5}-of-\d{5}$/i, "");
  let found: string | undefined;
  for (const match of stem.matchAll(LABEL)) found = match[1];
  return found === undefined ? undefined : normalizeQuantization(found);
}

/** "q4_k_m" → "Q4_K_M", "fp16" → "F16", "fp32" → "F32". */
export function normalizeQuantization(label: string): string {
  const upper = label.toUpperCase();
  if (upper === "FP16") return "F16";
  if (upper === "FP32") return "F32";
  return upper;
}

/** Bits per weight of a label; unknown labels ("Q4_K_XL", "UD-Q4_K_XL") by their digit, a little above the plain type. */
export function bitsPerWeight(quantization: string | undefined): number {
  if (quantization === undefined) return 0;
  const known = quantizationType(quantization.replace(/^UD-/, ""));
  if (known !== undefined) return known.bitsPerWeight;
  const digit = /Q([1-8])/.exec(quantization)?.[1];
  return digit === undefined ? 0 : Number(digit) + 0.75;
}

/** Whether a label is an unpacked float type (what local quantization starts from). */
export function isFloatType(quantization: string | undefined): boolean {
  return quantization === "F32" || quantization === "F16" || quantization === "BF16";
}

/** Whether llama.cpp's quantize tool can make this type here (known, and not one that needs an importance matrix). */
export function isQuantizableType(quantization: string): boolean {
  const type = quantizationType(quantization);
  return type !== undefined && type.needsImportanceMatrix !== true && !isFloatType(type.name);
}
