import type { EngineName } from "../../src/engine/engine.js";
import { ensureFixtures } from "../fixtures/models.js";
import { createModel } from "./start-server.js";

/**
 * The fixture models the protocol tests share, under fixed names: `scripted` (SCRIPTED_REPLY), `json` (JSON_REPLY),
 * `tool` (a tool call in the engine's own format: node-llama-cpp's function syntax in process, Qwen 2.5's, parsed by
 * llama.cpp, out of it) and, on llama-server, `thinking` and `parallel` (two calls in one reply).
 */
export async function createFixtureModels(baseUrl: string, engine: EngineName): Promise<void> {
  const fixtures = await ensureFixtures();
  await createModel(baseUrl, "scripted", fixtures.chat);
  await createModel(baseUrl, "json", fixtures.json);
  await createModel(baseUrl, "tool", engine === "llama-cpp" ? fixtures.toolCall : fixtures.qwenToolCall);
  if (engine === "llama-server") {
    await createModel(baseUrl, "thinking", fixtures.thinking);
    await createModel(baseUrl, "parallel", fixtures.qwenParallelTools);
  }
}
