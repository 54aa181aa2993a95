/**
 * Quantization labels as they appear in GGUF file names on the Hub ("…-Q4_K_M.gguf", "…-q8_0.gguf",
 * "Q8_0/…-00001-of-00002.gguf", "…-UD-Q4_K_XL.gguf", "…-fp16.gguf"), and how precise each is.
 */

/**
 * Approximate bits per weight of llama.cpp's types (its quantize tool's table): ranks files by precision, and sizes
 * a local quantization before it exists. Unpacked floats rank above every quantization.
 */
const BITS_PER_WEIGHT: Record<string, number> = {
  F32: 32, BF16: 16.01, F16: 16,
  Q8_0: 8.5, Q6_K: 6.56, Q5_1: 6, Q5_K_M: 5.7, Q5_K_S: 5.54, Q5_0: 5.5, Q4_1: 5, Q4_K_M: 4.89, MXFP4: 4.25,
  IQ4_NL: 4.5, Q4_0: 4.5, Q4_K_S: 4.58, IQ4_XS: 4.25, Q3_K_L: 4.27, Q3_K_M: 3.91, IQ3_M: 3.66, Q3_K_S: 3.5,
  IQ3_S: 3.44, IQ3_XS: 3.3, IQ3_XXS: 3.06, Q2_K: 2.96, Q2_K_S: 2.7, IQ2_M: 2.7, IQ2_S: 2.5, IQ2_XS: 2.31,
  IQ2_XXS: 2.06, TQ2_0: 2.06, IQ1_M: 1.75, TQ1_0: 1.69, IQ1_S: 1.56,
};

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

/** Bits per weight of a label; unknown labels ("Q4_K_XL") by their digit, a little above the plain type. */
export function bitsPerWeight(quantization: string | undefined): number {
  if (quantization === undefined) return 0;
  const known = BITS_PER_WEIGHT[quantization.replace(/^UD-/, "")];
  if (known !== undefined) return known;
  const digit = /Q([1-8])/.exec(quantization)?.[1];
  return digit === undefined ? 0 : Number(digit) + 0.75;
}

/** Whether a label is an unpacked float type (what local quantization starts from). */
export function isFloatType(quantization: string | undefined): boolean {
  return quantization === "F32" || quantization === "F16" || quantization === "BF16";
}

/** Whether llama.cpp's quantize tool can make this type. */
export function isQuantizableType(quantization: string): boolean {
  return quantization in BITS_PER_WEIGHT && quantization !== "MXFP4" && !quantization.startsWith("TQ");
}
