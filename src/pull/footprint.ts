import { mkdir, mkdtemp, open, rm, symlink } from "node:fs/promises";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { AppError, UpstreamError } from "../domain/errors.js";
import type { ModelMetadata } from "../domain/model.js";
import { modelMetadataFrom } from "../gguf/model-metadata.js";
import { GgufHeaderIncompleteError, readGguf } from "../gguf/read-gguf.js";
import type { Memory } from "../scheduler/memory.js";
import { upstreamFetch } from "./upstream-http.js";

/** What a model needs once loaded as the scheduler would load it by default, beside the memory budget. */
export interface Footprint {
  need: Memory;
  budget: Memory;
}

/** The scheduler's estimate of a GGUF (a file whose header is complete) with a default context, and its budget. */
export type FootprintEstimator = (modelPath: string, trainedContextLength: number) => Promise<Footprint>;

/** A file of a model not downloaded yet. */
export interface RemoteFile {
  url: string;
  headers: Record<string, string>;
  size: number;
  /** Its file name (split parts keep theirs, so that the parts are found by name). */
  name: string;
  /** A verified copy already on this machine (in the store, or the Hugging Face cache): read instead of fetched. */
  localPath?: string;
}

const FIRST_READ = 512 << 10;
const LONGEST_HEADER = 256 << 20;
const PREFIX_ATTEMPTS = 5;

/**
 * Estimates a remote model without downloading it: each file's GGUF header is fetched with Range requests (512 KiB,
 * then as much as the header turns out to need), written at the start of a sparse file of the real size, and the
 * scheduler's own estimate runs on those files (it reads headers only). The files are removed after. A file with a
 * local copy is read from it, so that pulling what is already here fetches nothing.
 */
export async function remoteFootprint(
  files: readonly RemoteFile[],
  estimate: FootprintEstimator,
  tempRoot: string,
  signal?: AbortSignal,
): Promise<Footprint & { quantization: string }> {
  await mkdir(tempRoot, { recursive: true });
  const dir = await mkdtemp(path.join(tempRoot, "header-"));
  try {
    let metadata: ModelMetadata | undefined;
    for (const file of files) {
      const probe = path.join(dir, path.posix.basename(file.name));
      const header = file.localPath !== undefined ? await linkLocal(file.localPath, probe) : await fetchHeader(file, probe, signal);
      metadata ??= modelMetadataFrom(header);
    }
    const footprint = await estimate(path.join(dir, path.posix.basename(files[0]?.name ?? "")), metadata?.contextLength ?? 0);
    return { ...footprint, quantization: metadata?.quantizationLevel ?? "unknown" };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** A local copy, linked under the file's own name (split parts are found by name). */
async function linkLocal(localPath: string, probe: string): Promise<Awaited<ReturnType<typeof readGguf>>> {
  await symlink(localPath, probe);
  return readGguf(probe);
}

/** Fetches as much of the file's start as its GGUF header needs, into `local` (sparse, of the file's size). */
async function fetchHeader(file: RemoteFile, local: string, signal?: AbortSignal): Promise<Awaited<ReturnType<typeof readGguf>>> {
  let want = Math.min(FIRST_READ, file.size);
  for (;;) {
    const bytes = await fetchPrefix(file, want, signal);
    const handle = await open(local, "w");
    try {
      await handle.write(bytes, 0, bytes.length, 0);
      await handle.truncate(file.size);
    } finally {
      await handle.close();
    }
    try {
      return await readGguf(local, { available: bytes.length });
    } catch (error) {
      if (!(error instanceof GgufHeaderIncompleteError) || bytes.length >= file.size) throw error;
      if (error.needed > LONGEST_HEADER) throw new UpstreamError(`${file.name}: its GGUF header is larger than ${LONGEST_HEADER >> 20} MiB`);
      want = Math.min(file.size, Math.max(error.needed + (1 << 20), want * 2));
    }
  }
}

/**
 * The first `bytes` bytes of a file (a Range request; from a server that ignores Range, the start of the body). A
 * connection that breaks while the bytes arrive is tried again a few times (failed requests themselves are retried
 * by upstreamFetch).
 */
async function fetchPrefix(file: RemoteFile, bytes: number, signal?: AbortSignal): Promise<Buffer> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await readPrefix(file, bytes, signal);
    } catch (error) {
      if (signal?.aborted || error instanceof AppError) throw error;
      if (attempt >= PREFIX_ATTEMPTS) throw new UpstreamError(`${file.name}: the connection kept breaking while its header was read (${error instanceof Error ? error.message : String(error)})`);
      await sleep(250 * attempt, undefined, signal ? { signal } : {});
    }
  }
}

async function readPrefix(file: RemoteFile, bytes: number, signal?: AbortSignal): Promise<Buffer> {
  const response = await upstreamFetch({ url: file.url, headers: { ...file.headers, range: `bytes=0-${bytes - 1}` }, ...(signal && { signal }) });
  const chunks: Buffer[] = [];
  let length = 0;
  const reader = response.body?.getReader();
  try {
    while (reader && length < bytes) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(Buffer.from(value));
      length += value.length;
    }
  } finally {
    await reader?.cancel().catch(() => undefined);
  }
  return Buffer.concat(chunks).subarray(0, bytes);
}
