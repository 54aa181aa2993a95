import { gguf, writeGguf, type GgufValue } from "../fixtures/gguf-writer.js";

export interface FakeModelFile {
  /** `general.architecture`; "bert" makes an embedding-only model. Default "llama". */
  architecture?: string;
  contextLength?: number;
  /** Adds fill-in-the-middle tokens, so the model gets the `insert` capability. */
  infill?: boolean;
  extraMetadata?: Record<string, GgufValue>;
}

/**
 * Writes a small GGUF whose header is valid (it passes the store's checks and reports sensible metadata) but whose
 * weights are meaningless: for tests that run on the fake engine.
 */
export async function writeFakeModel(file: string, options: FakeModelFile = {}): Promise<void> {
  const arch = options.architecture ?? "llama";
  await writeGguf(file, {
    metadata: {
      "general.architecture": gguf.string(arch),
      "general.name": gguf.string("fake"),
      "general.file_type": gguf.u32(0),
      [`${arch}.context_length`]: gguf.u32(options.contextLength ?? 2048),
      [`${arch}.embedding_length`]: gguf.u32(8),
      "tokenizer.ggml.tokens": gguf.array("string", Array.from({ length: 100 }, (_, i) => `t${i}`)),
      "tokenizer.chat_template": gguf.string("{% for m in messages %}{{ m.content }}{% endfor %}"),
      ...(options.infill && { "tokenizer.ggml.fim_pre_token_id": gguf.u32(1) }),
      ...options.extraMetadata,
    },
    tensors: [{ name: "token_embd.weight", shape: [8, 4], type: "F32", data: () => [new Float32Array(32).fill(0.5)] }],
  });
}
