import { randomBytes } from "node:crypto";
import { mkdir, readdir, rm } from "node:fs/promises";
import path from "node:path";
import { formatBytes } from "../domain/byte-size.js";
import { InsufficientStorageError, QuantizationError, RequestCancelledError, toAppError } from "../domain/errors.js";
import { modelMetadataFrom } from "../gguf/model-metadata.js";
import { readGguf } from "../gguf/read-gguf.js";
import { parseDigest } from "../store/blob-store.js";
import type { SqlDatabase } from "../store/database.js";
import { freeBytes } from "../store/disk-space.js";
import type { ModelStore } from "../store/model-store.js";
import { runQuantizeTool, type QuantizeProgress } from "./run-tool.js";
import { quantizationRefusal, quantizationType } from "./types.js";

export type { QuantizeProgress } from "./run-tool.js";

/** What a Quantizer works with (the server wires them: src/quantize/quantizer-for.ts). */
export interface QuantizerOptions {
  /** The quantize tool's path; rejects with an Error saying what is missing and how to get it. */
  binary: () => Promise<string>;
  store: ModelStore;
  db: SqlDatabase;
  /** CPU threads the tool uses. */
  threads: number;
  /** Where the tool writes its output: on the blob store's file system, so that adopting the result is a rename. */
  tempDir: string;
}

/** One caller's view of a quantization: its own cancellation and progress. */
export interface QuantizeOptions {
  /** Stops the tool (unless another caller still waits for the same quantization). */
  signal?: AbortSignal;
  onProgress?(progress: QuantizeProgress): void;
}

/** What quantizing stored weights to a type would be. */
export interface QuantizationPlan {
  /** The tool's name for the type asked for (`q4_k_m` → Q4_K_M); as given when unknown. */
  type: string;
  /** The source's quantization level (F16, BF16, F32, Q8_0, …). */
  sourceLevel: string;
  /** Why it cannot be made (unknown type, a source that is not F16/BF16/F32, a type that needs an imatrix). */
  refusal?: string;
}

/** Free space kept beyond the estimated size of the result. */
const SPACE_MARGIN_BYTES = 64 * 2 ** 20;
const SOURCE_BITS: Readonly<Record<string, number>> = { F32: 32, F16: 16, BF16: 16 };

/**
 * Local quantization with llama.cpp's quantize tool: weights in the blob store (F16, BF16 or F32) become a new blob
 * of the requested type. Each result is recorded (the `quantizations` table), so the same source and type are never
 * quantized twice while the result blob exists; concurrent requests for the same one share a single run.
 */
export class Quantizer {
  private readonly runs = new Map<string, SharedRun>();
  private swept?: Promise<void>;

  constructor(private readonly options: QuantizerOptions) {}

  /**
   * Reads the source's header and says what quantizing it to `type` would be, or why it cannot be (without
   * throwing for that: callers choose how to refuse). Throws BlobNotFoundError for an absent source and
   * InvalidModelFileError for one that is not a GGUF model.
   */
  async plan(sourceDigest: string, type: string): Promise<QuantizationPlan> {
    const source = parseDigest(sourceDigest);
    await this.options.store.blobs.require(source);
    const sourceLevel = modelMetadataFrom(await readGguf(this.options.store.modelPath(source))).quantizationLevel;
    const refusal = quantizationRefusal(type, sourceLevel);
    return { type: quantizationType(type)?.name ?? type, sourceLevel, ...(refusal !== undefined && { refusal }) };
  }

  /** Stops every running quantization (server shutdown): their callers get RequestCancelledError. */
  close(): void {
    for (const run of this.runs.values()) run.stop();
  }

  /** Whether a quantization of these weights is running now (they must not be removed meanwhile). */
  busy(sourceDigest: string): boolean {
    return [...this.runs.values()].some((run) => run.source === sourceDigest);
  }

  /**
   * Quantizes the model whose weights are `sourceDigest` (a one-file blob, or the first part of a split model) to
   * `type`, or returns the result made before (`cached`; also the source itself when it already is of that type).
   * The result is a verified blob in the store. Refuses sources that are not F16/BF16/F32 and unknown types with
   * QuantizationError; checks free disk space first (InsufficientStorageError); the tool is killed when `signal`
   * aborts (RequestCancelledError); a failure's message carries the tool's last output lines.
   */
  async quantize(sourceDigest: string, type: string, options: QuantizeOptions = {}): Promise<{ digest: string; cached: boolean }> {
    const source = parseDigest(sourceDigest);
    const plan = await this.plan(source, type);
    if (plan.refusal !== undefined) throw new QuantizationError(plan.refusal);
    if (plan.type === plan.sourceLevel) return { digest: source, cached: true };
    const made = await this.madeBefore(source, plan.type);
    if (made !== undefined) return { digest: made, cached: true };
    if (options.signal?.aborted) throw new RequestCancelledError();
    const key = `${source} ${plan.type}`;
    let run = this.runs.get(key);
    if (!run) {
      const started: SharedRun = new SharedRun(
        source,
        (signal, onProgress) => this.run(source, plan, signal, onProgress),
        () => this.runs.get(key) === started && this.runs.delete(key),
      );
      this.runs.set(key, started);
      run = started;
    }
    return { digest: await run.join(options), cached: false };
  }

  private async madeBefore(source: string, type: string): Promise<string | undefined> {
    const result = (await this.options.db.get("SELECT result_digest FROM quantizations WHERE source_digest = ? AND type = ?", [source, type]))?.result_digest;
    if (typeof result !== "string") return undefined;
    return (await this.options.store.blobs.has(result)) ? result : undefined;
  }

  private async run(source: string, plan: QuantizationPlan, signal: AbortSignal, onProgress: (progress: QuantizeProgress) => void): Promise<string> {
    const { store, tempDir, threads } = this.options;
    const binary = await this.options.binary().catch((error: unknown) => {
      throw new QuantizationError(`local quantization needs llama.cpp's quantize tool: ${error instanceof Error ? error.message : String(error)}`);
    });
    await mkdir(tempDir, { recursive: true });
    await (this.swept ??= sweepLeftovers(tempDir));
    await this.checkFreeSpace(source, plan);
    const output = path.join(tempDir, `${process.pid}-${randomBytes(6).toString("hex")}-${plan.type}.gguf`);
    try {
      await runQuantizeTool({ binary, input: store.modelPath(source), output, type: plan.type, threads, signal, onProgress });
      await readGguf(output).catch((error: unknown) => {
        throw new QuantizationError(`the quantize tool wrote an invalid GGUF file: ${toAppError(error).message}`);
      });
      const digest = await store.blobs.adoptHashed(output, { signal });
      await this.options.db.run(
        `INSERT INTO quantizations (source_digest, type, result_digest, created_at) VALUES (?, ?, ?, ?)
         ON CONFLICT(source_digest, type) DO UPDATE SET result_digest = excluded.result_digest, created_at = excluded.created_at`,
        [source, plan.type, digest, Date.now()],
      );
      return digest;
    } catch (error) {
      throw signal.aborted ? new RequestCancelledError() : error;
    } finally {
      await rm(output, { force: true });
    }
  }

  /** The result must fit on the disk, with a margin. */
  private async checkFreeSpace(source: string, plan: QuantizationPlan): Promise<void> {
    const { store, tempDir } = this.options;
    const record = store.list().find((r) => r.modelDigest === source);
    const sourceBytes = record?.size ?? (await store.blobs.sizeOf(source)) ?? 0;
    const bits = quantizationType(plan.type)?.bitsPerWeight ?? 16;
    const result = (sourceBytes * (bits + 0.5)) / (SOURCE_BITS[plan.sourceLevel] ?? 16);
    const needed = Math.ceil(result) + SPACE_MARGIN_BYTES;
    const free = await freeBytes(tempDir);
    if (free < needed) {
      throw new InsufficientStorageError(
        `quantizing this ${formatBytes(sourceBytes)} ${plan.sourceLevel} model to ${plan.type} needs about ${formatBytes(needed)} of free disk space in ${tempDir}; ${formatBytes(free)} is free`,
      );
    }
  }
}

/**
 * One quantization and everyone waiting for it: each caller gets its progress and result, and leaves when its own
 * signal aborts; the tool is stopped once no caller is left.
 */
class SharedRun {
  private readonly controller = new AbortController();
  private readonly listeners = new Set<(progress: QuantizeProgress) => void>();
  private readonly result: Promise<string>;
  private latest?: QuantizeProgress;
  private callers = 0;

  constructor(
    readonly source: string,
    work: (signal: AbortSignal, onProgress: (progress: QuantizeProgress) => void) => Promise<string>,
    private readonly ended: () => void,
  ) {
    this.result = work(this.controller.signal, (progress) => {
      this.latest = progress;
      for (const listener of this.listeners) listener(progress);
    });
    this.result.then(ended, ended);
  }

  stop(): void {
    this.ended();
    this.controller.abort();
  }

  join({ signal, onProgress }: QuantizeOptions): Promise<string> {
    this.callers++;
    if (onProgress) {
      this.listeners.add(onProgress);
      if (this.latest) onProgress(this.latest);
    }
    return new Promise((resolve, reject) => {
      const leave = (): void => {
        if (onProgress) this.listeners.delete(onProgress);
        signal?.removeEventListener("abort", onAbort);
      };
      const onAbort = (): void => {
        leave();
        if (--this.callers === 0) this.stop(); // a caller that comes now starts afresh
        reject(new RequestCancelledError());
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.result.then(
        (digest) => {
          leave();
          resolve(digest);
        },
        (error: unknown) => {
          leave();
          reject(error);
        },
      );
    });
  }
}

/** Removes what the tool wrote for processes that are gone (a crash or kill -9 mid-quantization). */
async function sweepLeftovers(dir: string): Promise<void> {
  for (const name of await readdir(dir)) {
    const pid = Number(/^(\d+)-/.exec(name)?.[1]);
    if (Number.isInteger(pid) && pid !== process.pid && !isAlive(pid)) await rm(path.join(dir, name), { force: true });
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
