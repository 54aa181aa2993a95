import type { Capability, ModelMetadata } from "../domain/model.js";
import { InvalidModelFileError } from "../domain/errors.js";
import { fileTypeName, ggmlTypeName } from "./ggml-types.js";
import type { GgufFile, GgufValue } from "./read-gguf.js";

/** Architectures whose models produce embeddings rather than text. */
const EMBEDDING_ARCHITECTURES = new Set(["bert", "nomic-bert", "nomic-bert-moe", "jina-bert-v2", "t5encoder", "modern-bert", "neo-bert"]);

/** Derives what /api/show and /api/tags report from a GGUF header. */
export function modelMetadataFrom(file: GgufFile): ModelMetadata {
  const architecture = file.metadata.get("general.architecture");
  if (typeof architecture !== "string" || architecture === "") {
    throw new InvalidModelFileError("invalid GGUF file: general.architecture is missing");
  }
  const num = (key: string): number => {
    const value = file.metadata.get(key);
    return typeof value === "number" ? value : 0;
  };
  const parameterCount = file.tensors.reduce((sum, t) => sum + Number(t.elements), 0);
  const chatTemplate = file.metadata.get("tokenizer.chat_template");
  const isEmbedding = EMBEDDING_ARCHITECTURES.has(architecture) || file.metadata.has(`${architecture}.pooling_type`);

  const capabilities: Capability[] = [];
  if (isEmbedding) {
    capabilities.push("embedding");
  } else {
    capabilities.push("completion");
    // Every chat template can carry function calls: the engine documents the functions in the system prompt
    // and constrains the call with a grammar.
    capabilities.push("tools");
    if (hasInfillTokens(file)) capabilities.push("insert");
    if (typeof chatTemplate === "string" && isThinkingTemplate(chatTemplate)) capabilities.push("thinking");
  }

  const modelInfo: Record<string, unknown> = {};
  for (const [key, value] of file.metadata) {
    if (key === "tokenizer.chat_template") continue;
    modelInfo[key] = jsonValue(value);
  }
  for (const key of file.arrayLengths.keys()) modelInfo[key] = null;
  modelInfo["general.parameter_count"] = parameterCount;

  return {
    format: "gguf",
    architecture,
    parameterCount,
    parameterSize: formatParameterCount(parameterCount),
    quantizationLevel: quantizationLevel(file),
    contextLength: num(`${architecture}.context_length`),
    embeddingLength: num(`${architecture}.embedding_length`),
    ...(typeof chatTemplate === "string" && { chatTemplate }),
    capabilities,
    modelInfo,
  };
}

/**
 * Marks of a chat template written for a model that reasons before it answers, each one that llama.cpp's chat parser
 * or the template itself acts on:
 * - the reasoning tags `<think>` (Qwen3, QwQ, DeepSeek-R1, GLM, MiniMax, Kimi K2 Thinking, Nemotron), `<seed:think>`
 *   (Seed-OSS) and `[THINK]` (Magistral);
 * - the switch `enable_thinking` (Qwen3, SmolLM3, GLM: the template writes an empty think block when it is false);
 * - the reasoning of earlier turns as a message field: `reasoning_content` (llama.cpp's and vLLM's name), or
 *   `message.thinking` / `message.reasoning` (gpt-oss and others).
 * Only these exact spellings count: a template that merely says "think" or "reason" in its prose is not a thinking one.
 * On the 70 templates in llama.cpp's models/templates this agrees with llama.cpp's own verdict (the chat parser's
 * `supports_thinking`) on 63; it also counts Apertus and Solar Open (reasoning formats llama.cpp's parser does not
 * find), and not Kimi K2 Instruct, LFM2 and Devstral (whose dedicated llama.cpp formats claim thinking though their
 * templates show none).
 */
const THINKING_TEMPLATE_MARKS: readonly RegExp[] = [
  /<think>/,
  /<seed:think>/,
  /\[THINK\]/,
  /\benable_thinking\b/,
  /\breasoning_content\b/,
  /\bmessage(?:\.|\[\s*["'])(?:thinking|reasoning)\b/,
];

/** Whether a Jinja chat template is a thinking model's (see THINKING_TEMPLATE_MARKS): Ollama's `thinking` capability. */
export function isThinkingTemplate(chatTemplate: string): boolean {
  return THINKING_TEMPLATE_MARKS.some((mark) => mark.test(chatTemplate));
}

function hasInfillTokens(file: GgufFile): boolean {
  return ["tokenizer.ggml.fim_pre_token_id", "tokenizer.ggml.prefix_token_id"].some((key) => file.metadata.has(key));
}

/** From `general.file_type`, else the type most weights are stored in. */
function quantizationLevel(file: GgufFile): string {
  const fileType = file.metadata.get("general.file_type");
  if (typeof fileType === "number") {
    const name = fileTypeName(fileType);
    if (name) return name;
  }
  const byType = new Map<number, number>();
  for (const t of file.tensors) byType.set(t.type, (byType.get(t.type) ?? 0) + Number(t.elements));
  const [top] = [...byType.entries()].sort((a, b) => b[1] - a[1]);
  return top ? ggmlTypeName(top[0]) : "unknown";
}

/** 134_000_000 → "134.0M", 7_615_616_512 → "7.6B" (Ollama's style). */
export function formatParameterCount(count: number): string {
  const units: [number, string][] = [[1e12, "T"], [1e9, "B"], [1e6, "M"], [1e3, "K"]];
  for (const [scale, unit] of units) {
    if (count >= scale) return `${(count / scale).toFixed(count >= scale * 100 ? 0 : 1)}${unit}`;
  }
  return String(count);
}

function jsonValue(value: GgufValue): unknown {
  if (typeof value === "bigint") return value.toString();
  if (Array.isArray(value)) return value.map(jsonValue);
  return value;
}
