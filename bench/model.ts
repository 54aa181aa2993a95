import { mkdir, stat } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { writeRandomModel, type RandomModelOptions } from "../test/fixtures/models.js";

/** The benchmarked model: a ~134M-parameter llama (TinyLlama-like width, 12 layers) with random Q8_0 weights. */
export const MODEL_SHAPE = {
  nEmbd: 768,
  nLayer: 12,
  nFf: 2048,
  nHead: 12,
  vocabSize: 32000,
  type: "Q8_0",
  seed: 1,
  contextLength: 2048,
  name: "bench-134m",
} as const satisfies RandomModelOptions;

/** Parameter count of a llama model of this shape (embeddings, attention, FFN, norms, output). */
export function parameterCount(s: typeof MODEL_SHAPE = MODEL_SHAPE): number {
  const layer = 4 * s.nEmbd * s.nEmbd + 3 * s.nEmbd * s.nFf + 2 * s.nEmbd;
  return 2 * s.vocabSize * s.nEmbd + s.nLayer * layer + s.nEmbd;
}

/** Where generated models are cached between runs. */
export function cacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.AI_SERVER_BENCH_DIR || path.join(os.tmpdir(), "ai-server-bench");
}

/** Returns the model's path, generating it first if it is not cached yet (the writer renames a complete file into place). */
export async function ensureModel(dir: string): Promise<{ path: string; generatedMs?: number }> {
  const s = MODEL_SHAPE;
  const file = path.join(dir, `random-${s.nEmbd}x${s.nLayer}-ff${s.nFf}-h${s.nHead}-v${s.vocabSize}-${s.type}-s${s.seed}-c${s.contextLength}.gguf`);
  if (await stat(file).then((st) => st.isFile(), () => false)) return { path: file };
  await mkdir(dir, { recursive: true });
  const start = performance.now();
  await writeRandomModel(file, MODEL_SHAPE);
  return { path: file, generatedMs: performance.now() - start };
}
