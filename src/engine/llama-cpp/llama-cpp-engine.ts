import os from "node:os";
import { getLlama, GgufInsights, LlamaLogLevel, readGgufFileInfo, type Llama, type LlamaGpuType } from "node-llama-cpp";
import { RequestCancelledError } from "../../domain/errors.js";
import type { Engine, LoadedModel, LoadSpec, MemoryEstimate } from "../engine.js";
import { readGguf } from "../../gguf/read-gguf.js";
import { disposeWithTimeout } from "./dispose.js";
import { fromLlamaError } from "./errors.js";
import { LlamaCppModel } from "./loaded-model.js";

export interface LlamaCppEngineOptions {
  /** "auto" tries the GPU backends node-llama-cpp ships and falls back to the CPU; "off" forces the CPU. */
  gpu: "auto" | "off" | LlamaGpuType;
  /** Receives llama.cpp's warnings and errors. */
  log?: (level: "warn" | "error", message: string) => void;
}

/**
 * The in-process engine: node-llama-cpp 3.21.1. This folder is the only place that imports node-llama-cpp.
 * Facts it is built around: `getLlama` runs once per process with `build: "never"` (otherwise it may start
 * compiling llama.cpp); threads are always explicit (its default is far too many on small machines); files are
 * validated before `loadModel` (a hostile header makes it spin); contexts are disposed before their model.
 */
export class LlamaCppEngine implements Engine {
  readonly name = "llama.cpp";
  private llama?: Promise<Llama>;

  constructor(private readonly options: LlamaCppEngineOptions) {}

  /** The shared Llama instance (created on first use). */
  runtime(): Promise<Llama> {
    this.llama ??= getLlama({
      build: "never",
      gpu: this.options.gpu === "off" ? false : this.options.gpu,
      maxThreads: os.availableParallelism(),
      logLevel: LlamaLogLevel.warn,
      logger: (level, message) => {
        const text = message.trim();
        if (text === "") return;
        if (level === LlamaLogLevel.error || level === LlamaLogLevel.fatal) this.options.log?.("error", text);
        else if (level === LlamaLogLevel.warn) this.options.log?.("warn", text);
      },
    });
    return this.llama;
  }

  async load(spec: LoadSpec, signal?: AbortSignal): Promise<LoadedModel> {
    await readGguf(spec.modelPath); // throws InvalidModelFileError for files that would make loadModel hang
    const llama = await this.runtime();
    if (signal?.aborted) throw new RequestCancelledError();
    let model;
    try {
      model = await llama.loadModel({ modelPath: spec.modelPath, gpuLayers: llama.gpu === false ? 0 : "auto", ...(signal && { loadSignal: signal }) });
    } catch (error) {
      throw fromLlamaError(error, "load");
    }
    try {
      const context = await model.createContext({
        contextSize: spec.contextSize * spec.slots,
        sequences: spec.slots,
        threads: spec.threads,
        ...(signal && { createSignal: signal }),
      });
      return new LlamaCppModel(spec, llama, model, context);
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
      contextSize: spec.contextSize * spec.slots,
      sequences: spec.slots,
      modelGpuLayers: gpuLayers,
    });
    return { ram: model.cpuRam + context.cpuRam, vram: model.gpuVram + context.gpuVram };
  }

  async close(): Promise<void> {
    const llama = await this.llama?.catch(() => undefined);
    if (llama) await disposeWithTimeout(() => llama.dispose(), "llama runtime");
    this.llama = undefined;
  }
}
