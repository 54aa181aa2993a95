import { useState } from "preact/hooks";
import { api } from "../../api.js";
import { formatNumber } from "../../format.js";
import { keepAliveText } from "./keep-alive.js";
import { MemoryBar } from "./memory-bar.js";
import type { LoadedModel, Memory } from "./types.js";

interface Props {
  model: LoadedModel;
  /** The memory budget, when the server has measured it. */
  budget: Memory | undefined;
  now: number;
  /** Called once an unload was asked for, to poll again at once. */
  onUnloaded: () => void;
}

/**
 * One loaded model: its memory against the budget, slots busy, queue, engine, keep-alive countdown, and Unload,
 * which does what Ollama's `stop` does: POST /api/generate with keep_alive 0 (the model goes once its running
 * requests finish).
 */
export function LoadedModelCard({ model, budget, now, onUnloaded }: Props) {
  const [unloading, setUnloading] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const slots = model.slots ?? 1;
  const busy = model.active > 0 || model.queued > 0;
  const unload = async (): Promise<void> => {
    setUnloading(true);
    setError(null);
    try {
      await api("POST", "/api/generate", { model: model.name, keep_alive: 0 });
      onUnloaded();
    } catch (failure) {
      setError(failure instanceof Error ? failure.message : String(failure));
      setUnloading(false);
    }
  };
  return (
    <li class="card running-model" data-testid="running-model" data-model={model.name}>
      <div class="row running-model-head">
        <h2 class="grow running-model-name">{model.name}</h2>
        <button type="button" class="danger" data-testid="running-unload" onClick={() => void unload()} disabled={unloading}>
          {unloading ? "Unloading…" : "Unload"}
        </button>
      </div>
      <dl class="running-facts">
        <div>
          <dt>Slots busy</dt>
          <dd data-testid="running-slots">{model.active} / {slots}</dd>
        </div>
        <div>
          <dt>Queue</dt>
          <dd data-testid="running-queue">{model.queued}</dd>
        </div>
        <div>
          <dt>Engine</dt>
          <dd data-testid="running-engine">{model.engine}</dd>
        </div>
        <div>
          <dt>Context</dt>
          <dd>{formatNumber(model.context_length)} tokens{slots > 1 ? " per slot" : ""}</dd>
        </div>
        <div>
          <dt>Unloads after</dt>
          <dd data-testid="running-keep-alive" title={busy ? "The countdown starts when its last request ends" : new Date(model.expires_at).toLocaleString()}>
            {keepAliveText(model.expires_at, busy, now)}
          </dd>
        </div>
      </dl>
      <MemoryBar label="RAM" bytes={model.size - model.size_vram} budget={budget?.ram} />
      <MemoryBar label="VRAM" bytes={model.size_vram} budget={budget && budget.vram > 0 ? budget.vram : undefined} />
      {error && <p class="error" role="alert">{error}</p>}
    </li>
  );
}
