import os from "node:os";
import { getLlama, LlamaCompletion, LlamaLogLevel, type Llama, type LlamaContext, type LlamaContextSequence, type LlamaModel } from "node-llama-cpp";
import type { Config } from "../src/config/schema.js";
import type { Vocabulary } from "./prompt.js";
import { sampleOf, type Sample, type Workload } from "./sample.js";

/**
 * node-llama-cpp called directly, set up as the server's engine sets it up (same getLlama options, same
 * context size and threads, one sequence reused across requests, one LlamaCompletion per request, the raw
 * prompt tokenized with special tokens and BOS prepended by LlamaCompletion).
 */
export class DirectRunner {
  private constructor(
    readonly llama: Llama,
    private readonly model: LlamaModel,
    private readonly context: LlamaContext,
    private readonly sequence: LlamaContextSequence,
  ) {}

  static async open(options: { modelPath: string; gpu: Config["gpu"]; threads: number; contextSize: number }): Promise<DirectRunner> {
    const llama = await getLlama({
      build: "never",
      gpu: options.gpu === "off" ? false : options.gpu,
      maxThreads: os.availableParallelism(),
      logLevel: LlamaLogLevel.warn,
    });
    const model = await llama.loadModel({ modelPath: options.modelPath, gpuLayers: llama.gpu === false ? 0 : "auto" });
    const context = await model.createContext({ contextSize: options.contextSize, threads: options.threads });
    return new DirectRunner(llama, model, context, context.getSequence());
  }

  get vocabulary(): Vocabulary {
    const model = this.model;
    return {
      tokenTexts: function* () {
        for (const token of model.iterateAllTokens()) yield model.detokenize([token]);
      },
      tokenize: (text) => model.tokenize(text, true),
    };
  }

  get gpuLayers(): number {
    return this.model.gpuLayers;
  }

  async run(prompt: string, work: Workload): Promise<Sample> {
    const completion = new LlamaCompletion({ contextSequence: this.sequence, autoDisposeSequence: false });
    try {
      const start = performance.now();
      const tokens = this.model.tokenize(prompt, true);
      let first: number | undefined;
      let generated = 0;
      await completion.generateCompletionWithMeta(tokens, {
        maxTokens: work.maxTokens,
        // what the server passes for {temperature: 0} (Ollama's top_k/top_p defaults; greedy at temperature 0)
        temperature: 0,
        topK: 40,
        topP: 0.9,
        repeatPenalty: false,
        onToken: (chunk) => {
          first ??= performance.now();
          generated += chunk.length;
        },
      });
      const end = performance.now();
      return sampleOf({ promptTokens: tokens.length + 1, evalTokens: generated, start, first: first ?? end, end });
    } finally {
      completion.dispose({ disposeSequence: false });
    }
  }

  /** Context before model, then the runtime. */
  async close(): Promise<void> {
    await this.context.dispose();
    await this.model.dispose();
    await this.llama.dispose();
  }
}
