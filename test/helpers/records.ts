import type { ModelMetadata, ModelRecord } from "../../src/domain/model.js";

/** A model record as the store returns it, for pure mapping tests. */
export function modelRecord(overrides: Partial<ModelRecord> = {}, metadata: Partial<ModelMetadata> = {}): ModelRecord {
  return {
    name: "tiny:latest",
    digest: "a".repeat(64),
    modelDigest: `sha256:${"b".repeat(64)}`,
    size: 1234,
    parameters: {},
    modifiedAt: new Date("2025-01-02T03:04:05.678Z"),
    metadata: {
      format: "gguf",
      architecture: "llama",
      parameterCount: 134_000_000,
      parameterSize: "134.0M",
      quantizationLevel: "Q8_0",
      contextLength: 2048,
      embeddingLength: 64,
      capabilities: ["completion", "tools"],
      modelInfo: { "general.architecture": "llama", "tokenizer.ggml.tokens": null },
      ...metadata,
    },
    ...overrides,
  };
}
