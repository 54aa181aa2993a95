import http from "node:http";
import { z } from "zod";
import type { Config } from "../src/config/schema.js";
import { sampleOf, type Sample, type Workload } from "./sample.js";
import { serveApp, type ServedApp } from "./served-app.js";

const MODEL_NAME = "bench";

/** Ollama's last /api/generate line: the counters we compare (durations in ns). */
const finalLine = z.object({
  done: z.literal(true),
  prompt_eval_count: z.number(),
  prompt_eval_duration: z.number(),
  eval_count: z.number(),
  eval_duration: z.number(),
});

const isFinal = (value: unknown): boolean => typeof value === "object" && value !== null && "done" in value && value.done === true;

/** The real app on 127.0.0.1:0, with the model imported into a throw-away home; requests over a real socket. */
export class HttpRunner {
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

  private constructor(private readonly served: ServedApp) {}

  /** `config.home` is replaced by a temporary directory, removed by close(). */
  static async open(config: Config, modelPath: string): Promise<HttpRunner> {
    return new HttpRunner(
      await serveApp(config, async (store) => {
        await store.create({ name: MODEL_NAME, modelDigest: (await store.blobs.importFile(modelPath)).digest });
      }),
    );
  }

  /** One streamed raw /api/generate; `client` is timed on arrival of NDJSON lines, `server` from the final counters. */
  async run(prompt: string, work: Workload): Promise<{ client: Sample; server: Sample }> {
    const body = JSON.stringify({
      model: MODEL_NAME,
      prompt,
      raw: true,
      stream: true,
      options: { num_predict: work.maxTokens, temperature: 0, num_ctx: work.contextSize, seed: 0 },
    });
    const start = performance.now();
    const { first, end, counters } = await this.stream(body);
    const client = sampleOf({ promptTokens: work.promptTokens, evalTokens: counters.eval_count, start, first: first ?? end, end });
    const server: Sample = {
      promptTokens: counters.prompt_eval_count,
      evalTokens: counters.eval_count,
      ttftMs: counters.prompt_eval_duration / 1e6,
      promptTps: counters.prompt_eval_count / (counters.prompt_eval_duration / 1e9),
      decodeTps: counters.eval_count / (counters.eval_duration / 1e9),
    };
    return { client, server };
  }

  private stream(body: string): Promise<{ first?: number; end: number; counters: z.infer<typeof finalLine> }> {
    return new Promise((resolve, reject) => {
      const request = http.request(
        { host: "127.0.0.1", port: this.served.port, path: "/api/generate", method: "POST", agent: this.agent, headers: { "content-type": "application/json" } },
        (response) => {
          let buffered = "";
          let first: number | undefined;
          response.setEncoding("utf8");
          response.on("data", (chunk: string) => {
            const now = performance.now();
            buffered += chunk;
            let newline: number;
            while ((newline = buffered.indexOf("\n")) !== -1) {
              const text = buffered.slice(0, newline);
              buffered = buffered.slice(newline + 1);
              if (text.trim() === "") continue;
              if (response.statusCode !== 200) return reject(new Error(`HTTP ${response.statusCode}: ${text}`));
              // Only the final line is validated, so the (in-process) client costs the server as little as possible.
              const value: unknown = JSON.parse(text);
              if (typeof value === "object" && value !== null && "error" in value) return reject(new Error(`in-band error: ${text}`));
              if (!isFinal(value)) first ??= now;
              else resolve({ ...(first !== undefined && { first }), end: now, counters: finalLine.parse(value) });
            }
          });
          response.on("end", () => reject(new Error(`stream ended without a final line (HTTP ${response.statusCode}): ${buffered}`)));
          response.on("error", reject);
        },
      );
      request.on("error", reject);
      request.end(body);
    });
  }

  async close(): Promise<void> {
    this.agent.destroy();
    await this.served.close();
  }
}
