/**
 * Single-stream speed of /api/generate with each engine: the in-process one (node-llama-cpp) and
 * AI_SERVER_ENGINE=llama-server (a llama.cpp llama-server process per model, over a UNIX socket), same model,
 * threads, prompts and sampling, alternating which goes first. Skipped without a llama-server build.
 */
import os from "node:os";
import type { Config } from "../src/config/schema.js";
import { checkLlamaServer, findLlamaServer } from "../src/engine/llama-server/binary.js";
import { HttpRunner } from "./http.js";
import { spread, type Sample, type Workload } from "./sample.js";

export interface EnginesBenchOptions {
  config: Config;
  modelPath: string;
  work: Workload;
  warmup: string;
  /** One per repetition. */
  prompts: string[];
  log: (message: string) => void;
}

export async function enginesBench(options: EnginesBenchOptions): Promise<string> {
  const { config, modelPath, work, log } = options;
  const title = "## Engines: /api/generate, in-process (node-llama-cpp) vs AI_SERVER_ENGINE=llama-server";
  let binary: string;
  let version: string;
  try {
    binary = await findLlamaServer(config.llamaServer);
    version = await checkLlamaServer(binary);
  } catch (error) {
    return `${title}\n\n- skipped: ${error instanceof Error ? error.message : String(error)}`;
  }
  const loadBefore = os.loadavg()[0] ?? 0;
  const inProcess = await HttpRunner.open({ ...config, engine: "llama-cpp" }, modelPath);
  const outOfProcess = await HttpRunner.open({ ...config, engine: "llama-server", llamaServer: binary }, modelPath).catch(async (error: unknown) => {
    await inProcess.close();
    throw error;
  });
  const results = { inProcess: [] as Sample[], llamaServer: [] as Sample[], client: { inProcess: [] as Sample[], llamaServer: [] as Sample[] } };
  try {
    await inProcess.run(options.warmup, work);
    await outOfProcess.run(options.warmup, work);
    for (const prompt of options.prompts) {
      const order = results.inProcess.length % 2 === 0 ? ["llama-server", "in-process"] : ["in-process", "llama-server"];
      const measured: Record<string, { client: Sample; server: Sample }> = {};
      for (const side of order) measured[side] = await (side === "in-process" ? inProcess : outOfProcess).run(prompt, work);
      const a = measured["in-process"]!;
      const b = measured["llama-server"]!;
      results.inProcess.push(a.server);
      results.llamaServer.push(b.server);
      results.client.inProcess.push(a.client);
      results.client.llamaServer.push(b.client);
      log(`engines rep ${results.inProcess.length}/${options.prompts.length}: decode tok/s in-process ${a.server.decodeTps.toFixed(2)}, llama-server ${b.server.decodeTps.toFixed(2)}`);
    }
  } finally {
    await Promise.allSettled([inProcess.close(), outOfProcess.close()]);
  }
  const cell = (samples: Sample[], key: "promptTps" | "decodeTps" | "ttftMs", digits: number): string => {
    const s = spread(samples.map((x) => x[key]));
    return `${s.median.toFixed(digits)} (${s.min.toFixed(digits)}–${s.max.toFixed(digits)})`;
  };
  const ratio = (b: Sample[], a: Sample[], key: "promptTps" | "decodeTps" | "ttftMs"): string =>
    spread(b.map((s, i) => s[key] / a[i]![key])).median.toFixed(3);
  const rows = [
    "| metric | in-process | llama-server engine | llama-server/in-process (median of per-rep ratios) |",
    "|---|--:|--:|--:|",
    `| decode tok/s (server's counters) | ${cell(results.inProcess, "decodeTps", 2)} | ${cell(results.llamaServer, "decodeTps", 2)} | ${ratio(results.llamaServer, results.inProcess, "decodeTps")} |`,
    `| decode tok/s (client's clock) | ${cell(results.client.inProcess, "decodeTps", 2)} | ${cell(results.client.llamaServer, "decodeTps", 2)} | ${ratio(results.client.llamaServer, results.client.inProcess, "decodeTps")} |`,
    `| prompt tok/s (server's counters) | ${cell(results.inProcess, "promptTps", 1)} | ${cell(results.llamaServer, "promptTps", 1)} | ${ratio(results.llamaServer, results.inProcess, "promptTps")} |`,
    `| time to first token, client (ms) | ${cell(results.client.inProcess, "ttftMs", 1)} | ${cell(results.client.llamaServer, "ttftMs", 1)} | ${ratio(results.client.llamaServer, results.client.inProcess, "ttftMs")} |`,
  ];
  const counts = (samples: Sample[], key: "promptTokens" | "evalTokens"): string => [...new Set(samples.map((x) => x[key]))].join("/");
  return [
    "",
    title,
    "",
    `- llama-server: ${binary} (${version}); threads ${config.threads} on both; ${work.promptTokens}-token raw prompts, ${work.maxTokens} generated, temperature 0`,
    `- ${results.inProcess.length} repetitions; load average ${loadBefore.toFixed(2)} before, ${(os.loadavg()[0] ?? 0).toFixed(2)} after`,
    "",
    ...rows,
    "",
    `Tokens per request (server's counters): prompt read ${counts(results.inProcess, "promptTokens")} in-process, ${counts(results.llamaServer, "promptTokens")} llama-server; ` +
      `generated ${counts(results.inProcess, "evalTokens")} in-process, ${counts(results.llamaServer, "evalTokens")} llama-server.`,
  ].join("\n");
}
