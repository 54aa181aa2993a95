import { mkdir, stat } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { generatorHash, writeRandomModel, type RandomModelOptions } from "../test/fixtures/models.js";

/**
 * The benchmarked model, by BENCH_MODEL: `134m` (default; a TinyLlama-width 12-layer llama, Q8_0: sized for CPUs),
 * `1b` (Llama-3.2-1B-like widths, Q8_0) or `8b` (Llama-3-8B-like widths, Q4_0: for GPUs). Random weights.
 */
export const MODEL_SHAPES = {
  "134m": { nEmbd: 768, nLayer: 12, nFf: 2048, nHead: 12, vocabSize: 32000, type: "Q8_0", seed: 1, contextLength: 2048, name: "bench-134m" },
  "1b": { nEmbd: 2048, nLayer: 16, nFf: 8192, nHead: 32, nHeadKv: 8, vocabSize: 32000, type: "Q8_0", seed: 1, contextLength: 2048, name: "bench-1b" },
  "8b": { nEmbd: 4096, nLayer: 32, nFf: 14336, nHead: 32, nHeadKv: 8, vocabSize: 32000, type: "Q4_0", seed: 1, contextLength: 2048, name: "bench-8b" },
} as const satisfies Record<string, RandomModelOptions>;

export type ModelShape = (typeof MODEL_SHAPES)[keyof typeof MODEL_SHAPES];

/** The shape BENCH_MODEL names (throws on an unknown name, listing the known ones). */
export function modelShape(env: NodeJS.ProcessEnv = process.env): ModelShape {
  const name = env.BENCH_MODEL || "134m";
  if (!(name in MODEL_SHAPES)) throw new Error(`BENCH_MODEL=${name}: expected one of ${Object.keys(MODEL_SHAPES).join(", ")}`);
  return MODEL_SHAPES[name as keyof typeof MODEL_SHAPES];
}

/** Parameter count of a llama model of this shape (embeddings, attention with grouped K/V heads, FFN, norms, output). */
export function parameterCount(s: RandomModelOptions): number {
  const kv = (s.nEmbd / s.nHead) * (s.nHeadKv ?? s.nHead);
  const layer = 2 * s.nEmbd * s.nEmbd + 2 * s.nEmbd * kv + 3 * s.nEmbd * s.nFf + 2 * s.nEmbd;
  return 2 * s.vocabSize * s.nEmbd + s.nLayer * layer + s.nEmbd;
}

/** Where generated models are cached between runs. */
export function cacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.AI_SERVER_BENCH_DIR || path.join(os.tmpdir(), "ai-server-bench");
}

/** Returns the model's path, generating it first if it is not cached yet (the writer renames a complete file into place). */
export async function ensureModel(dir: string, s: ModelShape = modelShape()): Promise<{ path: string; generatedMs?: number }> {
  const kv = "nHeadKv" in s ? `kv${s.nHeadKv}` : "";
  const file = path.join(dir, `random-${s.nEmbd}x${s.nLayer}-ff${s.nFf}-h${s.nHead}${kv}-v${s.vocabSize}-${s.type}-s${s.seed}-c${s.contextLength}-${await generatorHash()}.gguf`);
  if (await stat(file).then((st) => st.isFile(), () => false)) return { path: file };
  await mkdir(dir, { recursive: true });
  const start = performance.now();
  await writeRandomModel(file, s);
  return { path: file, generatedMs: performance.now() - start };
}
