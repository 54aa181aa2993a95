/**
 * Speculative decoding on/off, for each engine: a heavy scripted model (its layers are zero weights that cost
 * compute like real ones) and a 1-layer scripted draft with the same vocabulary and reply, so the draft is perfect
 * and the speed-up is what the engine's speculative loop makes of it. Three models per engine: the main model alone,
 * with `draft_model`, and with `speculative: "lookup"` (draftless: the prompt holds the reply, so lookup can guess).
 */
import { mkdir, stat } from "node:fs/promises";
import http from "node:http";
import path from "node:path";
import type { Config } from "../src/config/schema.js";
import { writeScriptedModel } from "../test/fixtures/models.js";
import { spread } from "./sample.js";
import { serveApp, type ServedApp } from "./served-app.js";

/** 96 distinct words (a scripted reply's tokens must be unique): ~97 tokens, then the end token. */
export const SPECULATIVE_REPLY = Array.from({ length: 96 }, (_, i) => `w${i.toString(36)}`).join(" ");
/** The heavy model: ~250M parameters of zero Q8_0 weights. */
const MAIN_SIZE = { nEmbd: 1536, nLayer: 8, nFf: 4096 } as const;
const DRAFT_TOKENS = 8;
const MODES = ["off", "draft", "lookup"] as const;
type Mode = (typeof MODES)[number];

export interface SpeculativeBenchOptions {
  config: Config;
  dir: string;
  reps: number;
  engines: readonly Config["engine"][];
  log: (message: string) => void;
}

/** Generates (once, cached in `dir`) the scripted pair; returns their paths. */
export async function ensureSpeculativePair(dir: string): Promise<{ main: string; draft: string }> {
  await mkdir(dir, { recursive: true });
  const main = path.join(dir, `scripted-main-${MAIN_SIZE.nEmbd}x${MAIN_SIZE.nLayer}-ff${MAIN_SIZE.nFf}-q8.gguf`);
  const draft = path.join(dir, "scripted-draft-1layer.gguf");
  const exists = (file: string): Promise<boolean> => stat(file).then((s) => s.isFile(), () => false);
  if (!(await exists(main))) await writeScriptedModel(main, { reply: SPECULATIVE_REPLY, size: MAIN_SIZE, type: "Q8_0", name: "scripted-main" });
  if (!(await exists(draft))) await writeScriptedModel(draft, { reply: SPECULATIVE_REPLY, name: "scripted-draft" });
  return { main, draft };
}

export async function speculativeBench(options: SpeculativeBenchOptions): Promise<string> {
  const { config, reps, log } = options;
  const pair = await ensureSpeculativePair(options.dir);
  const rows: string[] = [];
  for (const engine of options.engines) {
    const target = await SpeculativeTarget.open({ ...config, engine }, pair).catch((error: unknown) => error as Error);
    if (target instanceof Error) {
      rows.push(`| ${engine} | – | – | – | – | – | not run: ${target.message.slice(0, 120)} |`);
      continue;
    }
    try {
      if (target.engineName !== engine) {
        rows.push(`| ${engine} | – | – | – | – | – | not available (the server fell back to ${target.engineName}) |`);
        continue;
      }
      const speeds = new Map<Mode, number[]>(MODES.map((m) => [m, []]));
      for (const mode of MODES) await target.generate(mode); // loads each model and warms it up
      for (let rep = 0; rep < reps; rep++) {
        for (const mode of rep % 2 === 0 ? MODES : [...MODES].reverse()) speeds.get(mode)?.push(await target.generate(mode));
        log(`speculative ${engine} rep ${rep + 1}/${reps}: ${MODES.map((m) => `${m} ${speeds.get(m)?.at(-1)?.toFixed(1)}`).join(", ")} tok/s`);
      }
      const median = (mode: Mode): number => spread(speeds.get(mode) ?? [NaN]).median;
      const cell = (mode: Mode): string => {
        const s = spread(speeds.get(mode) ?? [NaN]);
        return `${s.median.toFixed(1)} (${s.min.toFixed(1)}–${s.max.toFixed(1)})`;
      };
      const acceptance = target.acceptance();
      rows.push(
        `| ${engine} | ${cell("off")} | ${cell("draft")} | ${(median("draft") / median("off")).toFixed(2)}× | ${cell("lookup")} | ${(median("lookup") / median("off")).toFixed(2)}× | ${acceptance} |`,
      );
    } finally {
      await target.close();
    }
  }
  return [
    "",
    "## Speculative decoding: a heavy scripted model, alone and with a perfect draft or prompt lookup",
    "",
    `- main: scripted, ${MAIN_SIZE.nLayer} layers of zero Q8_0 weights (n_embd ${MAIN_SIZE.nEmbd}, n_ff ${MAIN_SIZE.nFf}); draft: the same script in 1 layer; ` +
      `both answer the same ${SPECULATIVE_REPLY.split(" ").length}-word reply. /api/generate with the reply as prompt, temperature 0, draft_num_predict ${DRAFT_TOKENS}, ` +
      `threads ${config.threads}; decode tok/s from the server's eval_count / eval_duration; ${reps} repetitions, median (min–max). Goal: ≥ 1.5×`,
    "",
    "| engine | off tok/s | draft model tok/s | draft speed-up | lookup tok/s | lookup speed-up | accepted / drafted (draft; lookup) |",
    "|---|--:|--:|--:|--:|--:|---|",
    ...rows,
  ].join("\n");
}

/** One app with the three models; requests over a real socket. */
class SpeculativeTarget {
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  private readonly counters = new Map<string, { drafted: number; accepted: number }>();

  private constructor(private readonly served: ServedApp) {}

  static async open(config: Config, pair: { main: string; draft: string }): Promise<SpeculativeTarget> {
    const served = await serveApp({ ...config, keepAliveMs: -1, maxLoadedModels: 3, contextLength: 512 }, async (store) => {
      const main = (await store.blobs.importFile(pair.main)).digest;
      const draft = (await store.blobs.importFile(pair.draft)).digest;
      await store.create({ name: "draft", modelDigest: draft });
      await store.create({ name: "off", modelDigest: main });
      await store.create({ name: "draft-on", modelDigest: main, parameters: { draft_model: "draft", draft_num_predict: DRAFT_TOKENS } });
      await store.create({ name: "lookup-on", modelDigest: main, parameters: { speculative: "lookup", draft_num_predict: DRAFT_TOKENS } });
    });
    return new SpeculativeTarget(served);
  }

  /** The engine the app actually runs (it falls back to in-process when llama-server is missing). */
  get engineName(): string {
    return this.served.app.services.engine;
  }

  /** One non-streamed generation; decode tok/s from the server's counters. Throws unless the reply is the script. */
  async generate(mode: Mode): Promise<number> {
    const model = mode === "off" ? "off" : `${mode}-on`;
    const body = JSON.stringify({ model, prompt: SPECULATIVE_REPLY, stream: false, options: { temperature: 0, num_predict: 200 } });
    const answer = await new Promise<{ response?: string; eval_count?: number; eval_duration?: number; error?: string }>((resolve, reject) => {
      const request = http.request({ host: "127.0.0.1", port: this.served.port, path: "/api/generate", method: "POST", agent: this.agent, headers: { "content-type": "application/json" } }, (response) => {
        let text = "";
        response.setEncoding("utf8");
        response.on("data", (chunk: string) => void (text += chunk));
        response.on("end", () => {
          try {
            resolve(JSON.parse(text));
          } catch (error) {
            reject(error);
          }
        });
        response.on("error", reject);
      });
      request.on("error", reject);
      request.end(body);
    });
    if (answer.error !== undefined || answer.response !== SPECULATIVE_REPLY) throw new Error(`${model}: ${answer.error ?? `unexpected reply ${JSON.stringify(answer.response?.slice(0, 80))}`}`);
    const stats = this.served.app.services.scheduler.running().find((r) => r.record.name.split(":")[0] === model)?.stats.speculative;
    if (stats) this.counters.set(model, stats); // since load: kept here in case the model is unloaded later
    return (answer.eval_count ?? 0) / ((answer.eval_duration ?? 1) / 1e9);
  }

  /** Accepted / drafted tokens per speculative model since its load (the counters of /metrics), as last seen. */
  acceptance(): string {
    const of = (name: string): string => {
      const s = this.counters.get(name);
      return s && s.drafted > 0 ? `${s.accepted}/${s.drafted} (${((100 * s.accepted) / s.drafted).toFixed(0)}%)` : "none";
    };
    return `${of("draft-on")}; ${of("lookup-on")}`;
  }

  async close(): Promise<void> {
    this.agent.destroy();
    await this.served.close();
  }
}
