import { createHash } from "node:crypto";
import { mkdir, stat } from "node:fs/promises";
import path from "node:path";
import { DEFAULT_FIXTURE_DIR, writeRandomModel, type RandomModelOptions } from "../fixtures/models.js";

/**
 * A random llama of ~80M parameters (Q8_0, ~85 MB): big enough that loading and unloading it shows in the
 * process's RSS, and slow enough (tens of tokens per second on one thread) that a generation outlasts a short
 * request timeout. Written once (a few seconds) into the shared fixture directory.
 */
export const MEDIUM_MODEL: RandomModelOptions = {
  nEmbd: 768,
  nLayer: 8,
  nFf: 2048,
  nHead: 12,
  vocabSize: 16000,
  type: "Q8_0",
  seed: 2,
  contextLength: 2048,
  name: "medium-random",
};

export async function ensureMediumModel(dir: string = DEFAULT_FIXTURE_DIR): Promise<string> {
  const digest = createHash("sha256").update(JSON.stringify(MEDIUM_MODEL)).digest("hex").slice(0, 10);
  const file = path.join(dir, `sched-medium-${digest}.gguf`);
  if (await stat(file).then((s) => s.isFile(), () => false)) return file;
  await mkdir(dir, { recursive: true });
  await writeRandomModel(file, MEDIUM_MODEL); // written to a temporary sibling, then renamed: never half there
  return file;
}
