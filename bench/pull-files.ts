import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import { generatorHash, writeRandomModel, type RandomModelOptions } from "../test/fixtures/models.js";

/** A generated GGUF the fake Hub serves, with its size and sha256 (hashed once, then read from a sidecar file). */
export interface BenchGguf {
  path: string;
  size: number;
  /** Hex, without the "sha256:" prefix. */
  sha256: string;
  /** Set when this call wrote the file (ms). */
  generatedMs?: number;
}

/**
 * The layer of the pull bench's models: F32 (written without conversion, so multi-GB files take seconds), random
 * weights (nothing on the way could compress them). About 67 MB a layer, plus 34 MB of embeddings and output.
 */
const WIDE: Omit<RandomModelOptions, "nLayer"> = { nEmbd: 1024, nFf: 4096, nHead: 16, vocabSize: 4096, type: "F32", seed: 3, contextLength: 2048 };

/** A tiny model of the same kind, pulled first to warm a fresh server up (its llama.cpp runtime, its code paths). */
const TINY: RandomModelOptions = { nEmbd: 64, nLayer: 1, nFf: 128, nHead: 4, vocabSize: 512, type: "F32", seed: 3, contextLength: 2048 };

/**
 * A real llama-shaped model (it passes the server's GGUF checks and memory estimate) of about `bytes` bytes: the
 * whole number of layers that comes closest (at least one). Cached in `dir` under a name carrying its shape and the
 * generator's hash, so reruns neither write nor hash it again.
 */
export async function ensureBenchGguf(dir: string, bytes: number): Promise<BenchGguf> {
  const layerBytes = 4 * (4 * WIDE.nEmbd * WIDE.nEmbd + 3 * WIDE.nEmbd * WIDE.nFf + 2 * WIDE.nEmbd);
  const fixedBytes = 4 * 2 * WIDE.vocabSize * WIDE.nEmbd;
  const nLayer = Math.max(1, Math.round((bytes - fixedBytes) / layerBytes));
  return ensureModel(dir, { ...WIDE, nLayer, name: `pull-bench-${nLayer}` });
}

/** The warm-up model (a few hundred KB). */
export function ensureTinyGguf(dir: string): Promise<BenchGguf> {
  return ensureModel(dir, { ...TINY, name: "pull-bench-tiny" });
}

async function ensureModel(dir: string, shape: RandomModelOptions): Promise<BenchGguf> {
  const generator = await generatorHash();
  const file = path.join(dir, `pull-${shape.nEmbd}x${shape.nLayer}-ff${shape.nFf}-v${shape.vocabSize}-${shape.type}-s${shape.seed}-${generator}.gguf`);
  let generatedMs: number | undefined;
  if (!(await stat(file).catch(() => undefined))) {
    await mkdir(dir, { recursive: true });
    await removeStale(dir, generator);
    const start = performance.now();
    await writeRandomModel(file, shape);
    generatedMs = performance.now() - start;
  }
  return { path: file, ...(await digestOf(file)), ...(generatedMs !== undefined && { generatedMs }) };
}

/** Removes this bench's files written by another version of the generator (multi-GB files would pile up). */
async function removeStale(dir: string, generator: string): Promise<void> {
  for (const name of await readdir(dir)) {
    const written = /^pull-\d+x\d+-.*-([0-9a-f]{10})\.gguf(?:\.sha256\.json)?$/.exec(name)?.[1];
    if (written !== undefined && written !== generator) await rm(path.join(dir, name), { force: true });
  }
}

/** The file's sha256, from `<file>.sha256.json` when that was written for this very file (size and mtime), else hashed and saved there. */
async function digestOf(file: string): Promise<{ size: number; sha256: string }> {
  const { size, mtimeMs } = await stat(file);
  const sidecar = `${file}.sha256.json`;
  try {
    const saved = JSON.parse(await readFile(sidecar, "utf8")) as { size?: unknown; mtimeMs?: unknown; sha256?: unknown };
    if (saved.size === size && saved.mtimeMs === mtimeMs && typeof saved.sha256 === "string") return { size, sha256: saved.sha256 };
  } catch {
    // not hashed yet
  }
  const hash = createHash("sha256");
  await pipeline(createReadStream(file, { highWaterMark: 1 << 20 }), hash);
  const sha256 = hash.digest("hex");
  await writeFile(sidecar, JSON.stringify({ size, mtimeMs, sha256 }));
  return { size, sha256 };
}
