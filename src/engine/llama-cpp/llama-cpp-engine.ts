import os from "node:os";
import {
  DraftSequenceTokenPredictor,
  getLlama,
  getModuleVersion,
  GgufInsights,
  InputLookupTokenPredictor,
  LlamaLogLevel,
  readGgufFileInfo,
  type Llama,
  type LlamaContext,
  type LlamaGpuType,
  type LlamaOptions,
  type LlamaModel,
  type TokenPredictor,
} from "node-llama-cpp";
import { RequestCancelledError } from "../../domain/errors.js";
import type { Engine, LoadedModel, LoadSpec, MemoryEstimate } from "../engine.js";
import { readGguf } from "../../gguf/read-gguf.js";
import { disposeWithTimeout } from "./dispose.js";
import { fromLlamaError } from "./errors.js";
import { BatchObserver } from "./batch-observer.js";
import { LlamaCppModel } from "./loaded-model.js";
import { orderFirstSampleAfterDecode } from "./ordered-sampling.js";
import { prebuiltCudaLibraryDigest, prebuiltCudaVerdict } from "../gpu/cuda-compat.js";
import { queryNvidia, type NvidiaInfo } from "../gpu/nvidia.js";

/** Threads of a draft model's context. */
const DRAFT_THREADS = 1;
/** Tokens guessed per step when a speculative spec names no count. */
const DEFAULT_DRAFT_TOKENS = 8;

export interface LlamaCppEngineOptions {
  /** "auto" tries the GPU backends node-llama-cpp ships and falls back to the CPU; "off" forces the CPU. */
  gpu: "auto" | "off" | LlamaGpuType;
  /** Receives llama.cpp's warnings and errors. */
  log?: (level: "warn" | "error", message: string) => void;
  /** What the machine's NVIDIA cards are (default: nvidia-smi); tests stand in for a card here. */
  queryNvidia?: () => Promise<NvidiaInfo | undefined>;
}

/**
 * The in-process engine: node-llama-cpp 3.21.1. This folder is the only place that imports node-llama-cpp.
 * Facts it is built around: `getLlama` runs once per process with `build: "never"` (otherwise it may start
 * compiling llama.cpp); threads are always explicit (its default is far too many on small machines); files are
 * validated before `loadModel` (a hostile header makes it spin); contexts are disposed before their model.
 */
export class LlamaCppEngine implements Engine {
  readonly name = "llama-cpp";
  private llama?: Promise<Llama>;

  constructor(private readonly options: LlamaCppEngineOptions) {}

  /** What the start-up log should say about GPUs: what could not run here, why, and how to get a build that can. */
  readonly gpuNotes: string[] = [];

  /** The shared Llama instance (created on first use). */
  runtime(): Promise<Llama> {
    this.llama ??= this.start();
    return this.llama;
  }

  /**
   * getLlama with the configured GPU, falling back to what works: a named backend that does not load gives way to
   * the CPU, and node-llama-cpp's prebuilt CUDA library on a card it has no code for (an H100 or A100 with a CUDA
   * 13.0 driver, for 3.21.1) gives way to the other backends, because its first kernel would abort the process.
   */
  private async start(): Promise<Llama> {
    const wanted = this.options.gpu === "off" ? false : this.options.gpu;
    let llama: Llama;
    try {
      llama = await getLlama(this.llamaOptions(wanted));
    } catch (error) {
      if (wanted === false || wanted === "auto") throw error;
      const reason = error instanceof Error ? error.message.split("\n")[0] : String(error);
      this.gpuNotes.push(`AI_SERVER_GPU=${wanted}, but node-llama-cpp's ${wanted} build does not load here (${reason}); models run on the CPU`);
      llama = await getLlama(this.llamaOptions(false));
    }
    if (wanted === false) return llama;
    const nvidia = await (this.options.queryNvidia ?? queryNvidia)();
    if (!nvidia || nvidia.gpus.length === 0) return llama;
    const cards = nvidia.gpus.map((gpu) => gpu.name).join(", ");
    const remedy = "a build for this card: `npx --no node-llama-cpp source download --gpu cuda` (needs the CUDA toolkit), then restart";
    if (llama.gpu === "cuda") {
      const version = await getModuleVersion();
      const judged = prebuiltCudaVerdict(version, llama.buildType, nvidia);
      // Only a library that would be refused is hashed (159 MB): one replaced by a build for the card is used as it is.
      const verdict = judged.ok ? judged : prebuiltCudaVerdict(version, llama.buildType, nvidia, await prebuiltCudaLibraryDigest());
      if (verdict.ok) return llama;
      await llama.dispose();
      llama = await getLlama(this.llamaOptions(wanted === "cuda" ? false : { type: "auto", exclude: ["cuda"] }));
      this.gpuNotes.push(`${verdict.reason}: models run on ${llama.gpu === false ? "the CPU" : llama.gpu} instead. For ${remedy}`);
    } else if (llama.gpu === false) {
      this.gpuNotes.push(`${cards} found, but no GPU build of node-llama-cpp runs here: models run on the CPU. For ${remedy}`);
    }
    return llama;
  }

  private llamaOptions(gpu: LlamaOptions["gpu"]): LlamaOptions {
    return {
      build: "never",
      gpu,
      maxThreads: os.availableParallelism(),
      logLevel: LlamaLogLevel.warn,
      logger: (level, message) => {
        const text = message.trim();
        if (text === "") return;
        if (level === LlamaLogLevel.error || level === LlamaLogLevel.fatal) this.options.log?.("error", text);
        else if (level === LlamaLogLevel.warn) this.options.log?.("warn", text);
      },
    };
  }

  /** The backend models run on ("cuda", "vulkan", "metal" or false for the CPU) and the devices it sees. */
  async gpu(): Promise<{ backend: LlamaGpuType | false; devices: string[] }> {
    const llama = await this.runtime();
    return { backend: llama.gpu, devices: llama.gpu === false ? [] : await llama.getGpuDeviceNames() };
  }

  async load(spec: LoadSpec, signal?: AbortSignal): Promise<LoadedModel> {
    const llama = await this.runtime();
    const main = await this.loadWithContext(llama, spec.modelPath, spec, signal);
    if (spec.speculative?.type !== "draft") {
      const lookup = spec.speculative?.type === "lookup" ? spec.speculative.maxTokens ?? DEFAULT_DRAFT_TOKENS : undefined;
      const predictor = lookup === undefined ? undefined : () => new InputLookupTokenPredictor({ predictionLength: { max: lookup } });
      return new LlamaCppModel(spec, llama, main.model, main.context, predictor, [], main.batches);
    }
    const maxTokens = spec.speculative.maxTokens ?? DEFAULT_DRAFT_TOKENS;
    let draft;
    try {
      // One thread: a draft is small and steps one token at a time; a second thread pool spinning beside the main
      // model's on the same cores made decoding slower than without a draft (measured in `npm run bench`).
      draft = await this.loadWithContext(llama, spec.speculative.modelPath, { ...spec, threads: DRAFT_THREADS }, signal);
    } catch (error) {
      await disposeWithTimeout(() => main.context.dispose(), "context");
      await disposeWithTimeout(() => main.model.dispose(), "model");
      throw error;
    }
    const { context: draftContext, model: draftModel } = draft;
    const predictor = (): TokenPredictor => new DraftSequenceTokenPredictor(draftContext.getSequence(), { maxTokens, minTokens: 1 });
    return new LlamaCppModel(spec, llama, main.model, main.context, predictor, [
      { dispose: () => draftContext.dispose() },
      { dispose: () => draftModel.dispose() },
    ], main.batches);
  }

  /** Validates the file, loads it and creates its context; disposes the model if the context fails. */
  private async loadWithContext(
    llama: Llama,
    modelPath: string,
    spec: LoadSpec,
    signal?: AbortSignal,
  ): Promise<{ model: LlamaModel; context: LlamaContext; batches: BatchObserver }> {
    await readGguf(modelPath); // throws InvalidModelFileError for files that would make loadModel hang
    if (signal?.aborted) throw new RequestCancelledError();
    let model: LlamaModel;
    try {
      model = await llama.loadModel({ modelPath, gpuLayers: llama.gpu === false ? 0 : "auto", ...(signal && { loadSignal: signal }) });
    } catch (error) {
      throw fromLlamaError(error, "load");
    }
    try {
      const batches = new BatchObserver();
      const context = await model.createContext({
        contextSize: spec.contextSize, // per sequence: node-llama-cpp allocates contextSize × sequences cells
        sequences: spec.slots,
        threads: spec.threads,
        batching: { itemPrioritizationStrategy: batches.strategy },
        ...(signal && { createSignal: signal }),
      });
      orderFirstSampleAfterDecode(context);
      return { model, context, batches };
    } catch (error) {
      await disposeWithTimeout(() => model.dispose(), "model");
      throw fromLlamaError(error, "load");
    }
  }

  async estimateMemory(spec: LoadSpec): Promise<MemoryEstimate> {
    await readGguf(spec.modelPath);
    const llama = await this.runtime();
    const insights = await GgufInsights.from(await readGgufFileInfo(spec.modelPath, { logWarnings: false }), llama);
    const gpuLayers = llama.gpu === false ? 0 : insights.totalLayers;
    const model = await insights.estimateModelResourceRequirementsV2({ gpuLayers });
    const context = await insights.estimateContextResourceRequirementsV2({
      contextSize: spec.contextSize, // per sequence, as in load
      sequences: spec.slots,
      modelGpuLayers: gpuLayers,
    });
    return { ram: model.cpuRam + context.cpuRam, vram: model.gpuVram + context.gpuVram };
  }

  /** The machine's RAM, and its GPU's VRAM when models go on a GPU. */
  async capacity(): Promise<MemoryEstimate> {
    const llama = await this.runtime();
    const ram = (await llama.getRamState()).total;
    const vram = llama.gpu === false ? 0 : (await llama.getVramState()).total;
    return { ram, vram };
  }

  async close(): Promise<void> {
    const llama = await this.llama?.catch(() => undefined);
    if (llama) await disposeWithTimeout(() => llama.dispose(), "llama runtime");
    this.llama = undefined;
  }
}

