/**
 * The quantization types llama.cpp's quantize tool knows (its QUANT_OPTIONS table in tools/quantize/quantize.cpp, for
 * the llama.cpp that node-llama-cpp ships), with the approximate bits per weight of what each makes.
 */
export interface QuantizationType {
  /** The tool's name for it, which is also what `general.file_type` reads back as (`Q4_K_M`). */
  name: string;
  /** Approximate size of the result in bits per weight (for the free-space check; a little above the tool's figures). */
  bitsPerWeight: number;
  /**
   * The tool refuses to make it without an importance matrix (imatrix) computed from sample text, which local
   * quantization does not compute.
   */
  needsImportanceMatrix?: boolean;
}

const TYPES: readonly QuantizationType[] = [
  { name: "Q1_0", bitsPerWeight: 1.2 },
  { name: "Q2_0", bitsPerWeight: 2.3 },
  { name: "Q4_0", bitsPerWeight: 4.6 },
  { name: "Q4_1", bitsPerWeight: 5.1 },
  { name: "MXFP4_MOE", bitsPerWeight: 4.6 },
  { name: "Q5_0", bitsPerWeight: 5.6 },
  { name: "Q5_1", bitsPerWeight: 6.1 },
  { name: "IQ2_XXS", bitsPerWeight: 2.1, needsImportanceMatrix: true },
  { name: "IQ2_XS", bitsPerWeight: 2.4, needsImportanceMatrix: true },
  { name: "IQ2_S", bitsPerWeight: 2.6, needsImportanceMatrix: true },
  { name: "IQ2_M", bitsPerWeight: 2.8, needsImportanceMatrix: true },
  { name: "IQ1_S", bitsPerWeight: 1.6, needsImportanceMatrix: true },
  { name: "IQ1_M", bitsPerWeight: 1.8, needsImportanceMatrix: true },
  { name: "TQ1_0", bitsPerWeight: 1.7 },
  { name: "TQ2_0", bitsPerWeight: 2.1 },
  { name: "Q2_K", bitsPerWeight: 3.2 },
  { name: "Q2_K_S", bitsPerWeight: 3.0, needsImportanceMatrix: true },
  { name: "IQ3_XXS", bitsPerWeight: 3.1, needsImportanceMatrix: true },
  { name: "IQ3_S", bitsPerWeight: 3.5 },
  { name: "IQ3_M", bitsPerWeight: 3.7 },
  { name: "IQ3_XS", bitsPerWeight: 3.4 },
  { name: "Q3_K_S", bitsPerWeight: 3.6 },
  { name: "Q3_K_M", bitsPerWeight: 4.0 },
  { name: "Q3_K_L", bitsPerWeight: 4.3 },
  { name: "IQ4_NL", bitsPerWeight: 4.6 },
  { name: "IQ4_XS", bitsPerWeight: 4.3 },
  { name: "Q4_K_S", bitsPerWeight: 4.7 },
  { name: "Q4_K_M", bitsPerWeight: 4.9 },
  { name: "Q5_K_S", bitsPerWeight: 5.6 },
  { name: "Q5_K_M", bitsPerWeight: 5.7 },
  { name: "Q6_K", bitsPerWeight: 6.6 },
  { name: "Q8_0", bitsPerWeight: 8.5 },
  { name: "F16", bitsPerWeight: 16 },
  { name: "BF16", bitsPerWeight: 16 },
  { name: "F32", bitsPerWeight: 32 },
];

/** The tool's own aliases: a K-quant without its size letter means the M mix. */
const ALIASES: Readonly<Record<string, string>> = { Q3_K: "Q3_K_M", Q4_K: "Q4_K_M", Q5_K: "Q5_K_M" };

const BY_NAME = new Map(TYPES.map((type) => [type.name, type]));

/** Every type, in the tool's order. */
export const QUANTIZATION_TYPES: readonly QuantizationType[] = TYPES;

/** The formats local quantization starts from: quantizing an already quantized model loses quality twice. */
export const QUANTIZABLE_SOURCES: readonly string[] = ["F16", "BF16", "F32"];

/** The type `name` means, case-insensitively (`q4_k_m` → Q4_K_M, `q4_K` → Q4_K_M); undefined for an unknown name. */
export function quantizationType(name: string): QuantizationType | undefined {
  const upper = name.trim().toUpperCase();
  return BY_NAME.get(ALIASES[upper] ?? upper);
}

/**
 * Why a model stored as `sourceLevel` (its quantization level: F16, Q8_0, …) cannot be quantized to `requested`
 * here, or undefined when it can. The reasons are written for the person who asked.
 */
export function quantizationRefusal(requested: string, sourceLevel: string): string | undefined {
  const type = quantizationType(requested);
  if (!type) return `unknown quantization type "${requested}": expected one of ${TYPES.map((t) => t.name).join(", ")}`;
  if (!QUANTIZABLE_SOURCES.includes(sourceLevel.toUpperCase())) {
    return `quantization is only supported for F16, BF16 and F32 models: this model is ${sourceLevel}`;
  }
  if (type.needsImportanceMatrix) {
    return `${type.name} needs an importance matrix (imatrix), which local quantization does not compute: choose another type (e.g. Q4_K_M or IQ4_XS), or pull a ready-made ${type.name} GGUF`;
  }
  return undefined;
}
