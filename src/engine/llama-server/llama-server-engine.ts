import { mkdtemp, rm, stat } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { Engine, LoadedModel, LoadSpec, MemoryEstimate } from "../engine.js";
import { readGguf, type GgufFile } from "../../gguf/read-gguf.js";
import { LlamaServerModel, type ModelHeader } from "./loaded-model.js";
import { ProcessRegistry } from "./process-registry.js";
import { ServerProcess } from "./server-process.js";

/** Tokens guessed per step when a speculative spec names no count (as in-process). */
const DEFAULT_DRAFT_TOKENS = 8;
/** Longest wait for a process to load its model and answer /health. */
const DEFAULT_LOAD_TIMEOUT_MS = 5 * 60_000;
/** llama-server's prompt cache in RAM per model process (-cram, MiB): slot states saved for later reuse. */
const PROMPT_CACHE_MIB = 64;

export interface LlamaServerEngineOptions {
  /** Path of llama.cpp's llama-server (see binary.ts). */
  binary: string;
  /** "off" keeps every layer on the CPU; anything else lets llama-server offload what fits (its default). */
  gpu: string;
  /**
   * Estimates and machine capacity, e.g. the in-process engine (its GGUF insights, without loading anything);
   * closed with this engine. Absent: the file sizes, and the OS's RAM.
   */
  estimator?: Pick<Engine, "estimateMemory" | "capacity" | "close">;
  /** Directory for the sockets (default: a fresh private temp dir; UNIX socket paths must stay short). */
  runDir?: string;
  /**
   * Where running processes are recorded (e.g. AI_SERVER_HOME/run/llama-server): processes left running by an
   * earlier server that was killed are reaped by the next server's start-up (app.ts, whatever its default engine).
   * Absent: nothing is recorded.
   */
  stateDir?: string;
  loadTimeoutMs?: number;
}

/**
 * The out-of-process engine: one llama.cpp `llama-server` process per loaded model, spoken to over a UNIX socket.
 * A crash or OOM of one model cannot take this server down: its requests end with EngineCrashedError and the model
 * reports the crash (`onCrash`) so that the scheduler drops it. Unloading (ending the process) returns every byte.
 * This folder is the only place that knows llama-server's HTTP API.
 */
export class LlamaServerEngine implements Engine {
  readonly name = "llama-server";
  private runDir?: Promise<string>;
  private count = 0;
  private readonly registry?: ProcessRegistry;

  constructor(private readonly options: LlamaServerEngineOptions) {
    if (options.stateDir !== undefined) this.registry = new ProcessRegistry(options.stateDir);
  }

  async load(spec: LoadSpec, signal?: AbortSignal): Promise<LoadedModel> {
    const header = modelHeader(await readGguf(spec.modelPath), spec.modelPath); // InvalidModelFileError before llama.cpp sees a hostile header
    if (spec.speculative?.type === "draft") await readGguf(spec.speculative.modelPath);
    const id = ++this.count;
    const dir = await this.directory();
    const model = path.basename(spec.modelPath);
    const label = `model ${model}`;
    const start = (name: string, role: string, args: string[], abort?: AbortSignal): Promise<ServerProcess> =>
      ServerProcess.start({
        binary: this.options.binary,
        args: [...args, "--host", path.join(dir, name)],
        socketPath: path.join(dir, name),
        label,
        model,
        role,
        timeoutMs: this.options.loadTimeoutMs ?? DEFAULT_LOAD_TIMEOUT_MS,
        ...(abort && { signal: abort }),
        ...(this.registry && { registry: this.registry }),
      });
    const server = await start(`${id}.sock`, "llama-server process", this.generationArgs(spec), signal);
    return new LlamaServerModel(spec, server, header, {
      embedding: () => start(`${id}-embed.sock`, "llama-server embeddings process", this.embeddingArgs(spec)),
      rerank: () => start(`${id}-rerank.sock`, "llama-server rerank process", this.rerankArgs(spec)),
    });
  }

  /** The in-process estimate when there is one (weights, KV cache × slots, buffers), else the weights' size; plus the prompt cache. */
  async estimateMemory(spec: LoadSpec): Promise<MemoryEstimate> {
    const cache = PROMPT_CACHE_MIB * 1024 * 1024;
    if (this.options.estimator) {
      const estimate = await this.options.estimator.estimateMemory(spec);
      return { ...estimate, ram: estimate.ram + cache };
    }
    await readGguf(spec.modelPath);
    const draft = spec.speculative?.type === "draft" ? (await stat(spec.speculative.modelPath)).size : 0;
    return { ram: (await stat(spec.modelPath)).size + draft + cache, vram: 0 };
  }

  async capacity(): Promise<MemoryEstimate> {
    return (await this.options.estimator?.capacity?.()) ?? { ram: os.totalmem(), vram: 0 };
  }

  async close(): Promise<void> {
    const dir = await this.runDir?.catch(() => undefined);
    if (dir && this.options.runDir === undefined) await rm(dir, { recursive: true, force: true });
    this.runDir = undefined;
    await this.options.estimator?.close();
  }

  private directory(): Promise<string> {
    this.runDir ??= this.options.runDir !== undefined ? Promise.resolve(this.options.runDir) : mkdtemp(path.join(os.tmpdir(), "ai-server-llama-"));
    return this.runDir;
  }

  /**
   * One KV cache of `-c` = contextSize × slots cells that the `-np` slots share (unified, as llama-server's own
   * default): a slot takes cells as its sequence grows, up to contextSize (`--kv-unified-per-slot`, the context a
   * request was promised), so every slot at its limit still fits, and a prefix one slot holds can be copied into
   * another without reading it again. A small prompt cache in RAM (counted in the estimate): with none (-cram 0) 8
   * concurrent streams decoded 10% slower (313 vs 353 tok/s, 10 rounds, 2 cores). Idle slots are not saved into it
   * and cleared at every new request (--no-cache-idle-slots): they keep their cells (the pool has room for every
   * slot), where the copies churned through the small cache — with 32 slots a chat's turn 2 waited 54 ms for them on
   * a GPU where plain llama-server (8 GiB cache) answered in 14 ms. `--context-shift`: a reply that reaches the end
   * of the context goes on by discarding the oldest context (a request's `shift` false bounds its reply instead).
   */
  private generationArgs(spec: LoadSpec): string[] {
    const args = [
      ...this.common(spec), "-c", String(spec.contextSize * spec.slots), "-np", String(spec.slots), "--kv-unified",
      "--kv-unified-per-slot", String(spec.contextSize), "-cram", String(PROMPT_CACHE_MIB),
      "--no-cache-idle-slots", "--jinja", "--context-shift",
    ];
    const speculative = spec.speculative;
    const n = String(speculative?.maxTokens ?? DEFAULT_DRAFT_TOKENS);
    if (speculative?.type === "draft") {
      // The draft on one thread: a second pool of threads spinning beside the main model's on the same cores made
      // decoding slower than without a draft (a perfect draft: 0.59× with 2 draft threads, 3–4× with 1, on 2 cores).
      args.push("--spec-type", "draft-simple", "--spec-draft-model", speculative.modelPath, "--spec-draft-n-max", n, "-td", "1", "-tbd", "1");
      if (this.options.gpu === "off") args.push("--spec-draft-ngl", "0");
    } else if (speculative?.type === "lookup") {
      // Draftless: the continuation of the last few tokens' earlier occurrence (prompt included) is the guess.
      args.push("--spec-type", "ngram-simple", "--spec-ngram-simple-size-n", "3", "--spec-ngram-simple-size-m", n, "--spec-draft-n-max", n);
    }
    return args;
  }

  /** One slot; a whole input must fit in one batch (mean pooling), so the batch is the context. */
  private embeddingArgs(spec: LoadSpec): string[] {
    const n = String(spec.contextSize);
    return [...this.common(spec), "--embeddings", "--pooling", "mean", "-c", n, "-b", n, "-ub", n, "-np", "1"];
  }

  /** As for embeddings, with rank pooling: a (query, document) pair is scored in one batch. */
  private rerankArgs(spec: LoadSpec): string[] {
    const n = String(spec.contextSize);
    return [...this.common(spec), "--reranking", "-c", n, "-b", n, "-ub", n, "-np", "1"];
  }

  /**
   * `--poll-batch 0`: the threads that compute batches of several tokens (parallel streams, prompts, draft checks)
   * sleep between batches instead of spinning for a few milliseconds; the spinning took the cores from this
   * server's relay of the tokens just made. One-token steps keep the spinning pool (its wake-up is faster).
   * Measured through /api/generate on 2 cores, 2 threads, vs plain llama-server: 8 streams 0.93× → 1.01×
   * (medians of 30 rounds), 4 streams 0.80× → 0.94× (16 rounds).
   */
  private common(spec: LoadSpec): string[] {
    const threads = String(spec.threads);
    return [
      "-m", spec.modelPath, "-t", threads, "-tb", threads, "--poll-batch", "0", "--no-webui", "--log-colors", "off",
      ...(this.options.gpu === "off" ? ["-ngl", "0"] : []),
    ];
  }
}

/** llama.cpp's LLAMA_POOLING_TYPE_RANK. */
const RANK_POOLING = 4;

/** What requests need from a header: a name for messages, the vocabulary's size, whether it declares rank pooling. */
function modelHeader(file: GgufFile, modelPath: string): ModelHeader {
  const name = file.metadata.get("general.name");
  const architecture = file.metadata.get("general.architecture");
  const tokens = file.metadata.get("tokenizer.ggml.tokens");
  const pooling = file.metadata.get(`${String(architecture)}.pooling_type`);
  return {
    name: typeof name === "string" && name !== "" ? name : path.basename(modelPath),
    vocabSize: file.arrayLengths.get("tokenizer.ggml.tokens") ?? (Array.isArray(tokens) ? tokens.length : 0),
    rankPooling: (typeof pooling === "number" || typeof pooling === "bigint") && Number(pooling) === RANK_POOLING,
  };
}
