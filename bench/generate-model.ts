/**
 * Generates BENCH_MODEL's model into the bench cache (AI_SERVER_BENCH_DIR) unless it is there, and prints its path:
 * `node --import tsx bench/generate-model.ts`. The offline GPU kit runs llama.cpp's native reference on it first.
 */
import { cacheDir, ensureModel, modelShape } from "./model.js";

const model = await ensureModel(cacheDir(), modelShape());
if (model.generatedMs !== undefined) process.stderr.write(`generated in ${(model.generatedMs / 1000).toFixed(1)} s\n`);
process.stdout.write(`${model.path}\n`);
