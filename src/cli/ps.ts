import { formatBytes } from "../domain/byte-size.js";
import { runningServer } from "./connection.js";
import { processorText, table, untilText } from "./format.js";
import type { PsModel } from "./wire.js";

/** `ai-server ps`: the running server's loaded models (GET /api/ps), as `ollama ps` lists them. */
export async function listRunning(): Promise<void> {
  const api = await runningServer();
  if (!api) return;
  const { models } = await api.json<{ models: PsModel[] }>("GET", "/api/ps");
  process.stdout.write(psTable(models, new Date()));
}

/** NAME, ID (12 hex of the digest), SIZE, PROCESSOR, CONTEXT, UNTIL ("in use" while it serves requests). */
export function psTable(models: PsModel[], now: Date): string {
  const rows = models.map((m) => [
    m.name,
    m.digest.replace(/^sha256:/, "").slice(0, 12),
    formatBytes(m.size),
    processorText(m.size, m.size_vram),
    String(m.context_length),
    // A model serving requests has no expiry yet (the server reports "never" until it is idle).
    m.active > 0 ? "in use" : untilText(new Date(m.expires_at), now),
  ]);
  return table(["NAME", "ID", "SIZE", "PROCESSOR", "CONTEXT", "UNTIL"], rows);
}
