import { formatBytes } from "../../format.js";

/**
 * Bytes against a budget as a bar and a sentence ("1.2 GiB of 12 GiB (10%)"); without a budget (not measured yet, or
 * no GPU for VRAM) the bytes alone.
 */
export function MemoryBar({ label, bytes, budget }: { label: string; bytes: number; budget: number | undefined }) {
  const share = budget !== undefined && budget > 0 ? Math.min(1, bytes / budget) : undefined;
  return (
    <div class="running-memory">
      <span class="running-memory-label">{label}</span>
      <div
        class="running-bar"
        role="meter"
        aria-label={`${label} against the memory budget`}
        aria-valuemin={0}
        aria-valuemax={budget ?? 0}
        aria-valuenow={bytes}
      >
        {share !== undefined && <div class="running-bar-fill" style={{ width: `${(share * 100).toFixed(1)}%` }} />}
      </div>
      <span class="running-memory-text">
        {formatBytes(bytes)}
        {share !== undefined && budget !== undefined && <span class="muted"> of {formatBytes(budget)} ({share < 0.01 && share > 0 ? "<1" : Math.round(share * 100)}%)</span>}
      </span>
    </div>
  );
}
