import { api } from "../../api.js";
import { formatBytes } from "../../format.js";
import { LoadedModelCard } from "./loaded-model.js";
import type { HealthResponse, PsResponse } from "./types.js";
import { useNow, usePoll } from "./use-poll.js";

const POLL_EVERY_MS = 2000;

/** The models loaded now (GET /api/ps) with the memory budget (GET /health), polled every 2 s. */
export function LoadedModels() {
  const now = useNow(1000);
  const { data, error, refresh } = usePoll(async (signal) => {
    const [ps, health] = await Promise.all([api<PsResponse>("GET", "/api/ps", undefined, signal), api<HealthResponse>("GET", "/health", undefined, signal)]);
    return { models: ps.models, health };
  }, POLL_EVERY_MS);
  const memory = data?.health.memory ?? null;
  return (
    <section aria-labelledby="running-models-title">
      <h2 id="running-models-title">Loaded models</h2>
      {error && <p class="error" role="alert">The server did not answer: {error}</p>}
      {data && (
        <p class="muted running-summary" data-testid="running-summary">
          {memory
            ? `Booked ${formatBytes(memory.booked.ram)} of ${formatBytes(memory.budget.ram)} RAM` +
              (memory.budget.vram > 0 ? `, ${formatBytes(memory.booked.vram)} of ${formatBytes(memory.budget.vram)} VRAM` : " (no GPU memory in the budget)")
            : "The memory budget is known once a model has loaded."}
          {` · ${data.health.queue.waiting} waiting (at most ${data.health.queue.max})`}
          {data.health.loading && ` · loading ${data.health.loading.model}${data.health.loading.waiting ? ` (${data.health.loading.waiting})` : ""}`}
        </p>
      )}
      {data === undefined && !error && <p class="muted">Loading…</p>}
      {data && data.models.length === 0 && (
        <p class="muted" data-testid="running-empty">
          No model is loaded. A request loads one (a chat on the Chat page does), and it stays for its keep-alive.
        </p>
      )}
      <ul class="running-models" data-testid="running-models">
        {data?.models.map((model) => (
          <LoadedModelCard key={model.name} model={model} budget={memory?.budget} now={now} onUnloaded={refresh} />
        ))}
      </ul>
    </section>
  );
}
