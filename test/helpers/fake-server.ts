import path from "node:path";
import type { SettingName } from "../../src/config/schema.js";
import { FakeEngine } from "./fake-engine.js";
import { writeFakeModel } from "./gguf-files.js";
import { createModel, startServer, type TestServer } from "./start-server.js";

export interface FakeServer extends TestServer {
  engine: FakeEngine;
  /** A header-valid GGUF file of a chat model, for upload tests. */
  chatFile: string;
}

/**
 * The real app on the fake engine, with three models already created through the HTTP API:
 * `chat` (a completion + tools model), `embedder` (embedding-only, "bert") and `fim` (has infill tokens).
 */
export async function startFakeServer(config: Partial<Record<SettingName, unknown>> = {}): Promise<FakeServer> {
  const engine = new FakeEngine();
  const server = await startServer({ engine, config });
  const chatFile = path.join(server.home, "chat.gguf");
  await writeFakeModel(chatFile);
  await writeFakeModel(path.join(server.home, "bert.gguf"), { architecture: "bert" });
  await writeFakeModel(path.join(server.home, "fim.gguf"), { infill: true });
  await createModel(server.baseUrl, "chat", chatFile);
  await createModel(server.baseUrl, "embedder", path.join(server.home, "bert.gguf"));
  await createModel(server.baseUrl, "fim", path.join(server.home, "fim.gguf"));
  return { ...server, engine, chatFile };
}
