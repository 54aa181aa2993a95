import { normalizeModelName } from "../domain/model-name.js";
import { runningServer } from "./connection.js";
import type { PsModel } from "./wire.js";

/**
 * `ai-server stop NAME`: unloads a loaded model (once its running requests finish), as `ollama stop` does: POST
 * /api/generate with no prompt and `keep_alive: 0`. A model that is not loaded is an error.
 */
export async function stopModel(name: string): Promise<void> {
  const api = await runningServer();
  if (!api) {
    process.exitCode = 1;
    return;
  }
  const { models } = await api.json<{ models: PsModel[] }>("GET", "/api/ps");
  const wanted = comparable(name);
  const loaded = models.find((m) => comparable(m.name) === wanted);
  if (!loaded) throw new Error(`model "${name}" is not running`);
  await api.json("POST", "/api/generate", { model: loaded.name, keep_alive: 0, stream: false });
  console.log(`stopped ${loaded.name}`);
}

/** The stored spelling of a name, lower-cased (lookups are case-insensitive); the name itself when it does not parse. */
function comparable(name: string): string {
  try {
    return normalizeModelName(name).toLowerCase();
  } catch {
    return name.trim().toLowerCase();
  }
}
