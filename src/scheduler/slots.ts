import type { ModelRecord } from "../domain/model.js";
import { describe, fits, type Memory } from "./memory.js";

/** The most slots chosen automatically: llama-server's own automatic count, and Ollama's when memory allows. */
export const AUTO_SLOTS_MAX = 4;

/** How many slots a model was loaded with, and why (shown by /api/ps). */
export interface SlotChoice {
  slots: number;
  reason: string;
}

/**
 * Slots for a model whose slot count is automatic: the most of AUTO_SLOTS_MAX, halved down to 1, whose estimate
 * (`need(n)`: weights and n slots' KV cache) fits in `free` (the budget less what the other loaded models hold),
 * without unloading anything for it; 1 when none does (admission then frees memory as for any load). Estimates are
 * asked from the largest down, so a model that fits with the most slots costs one estimate.
 */
export async function chooseSlots(need: (slots: number) => Promise<Memory>, free: Memory, contextSize: number): Promise<SlotChoice> {
  let refused: { slots: number; need: Memory } | undefined;
  for (let slots = AUTO_SLOTS_MAX; slots >= 1; slots = Math.floor(slots / 2)) {
    const needed = await need(slots);
    if (fits(needed, free)) {
      const why = refused ? `; ${refused.slots} would need ${describe(refused.need)}` : "";
      return { slots, reason: `auto: ${slots} slot${slots === 1 ? "" : "s"} of ${contextSize} tokens fit in the free memory (${describe(needed)} of ${describe(positive(free))} free${why})` };
    }
    refused ??= { slots, need: needed };
  }
  return { slots: 1, reason: `auto: 1 slot, as even that needs more than the free memory (${describe(positive(free))}) beside the loaded models` };
}

/** A slot count set by hand: AI_SERVER_NUM_PARALLEL or the model's num_parallel parameter. */
export function fixedSlots(slots: number, from: "setting" | "model"): SlotChoice {
  return { slots, reason: from === "model" ? "the model's num_parallel parameter" : "AI_SERVER_NUM_PARALLEL" };
}

function positive(memory: Memory): Memory {
  return { ram: Math.max(0, memory.ram), vram: Math.max(0, memory.vram) };
}

/** The model's own `num_parallel` parameter (1–256), if it has one. */
export function modelParallel(record: ModelRecord): number | undefined {
  const parallel = Number(record.parameters.num_parallel);
  return Number.isInteger(parallel) && parallel >= 1 && parallel <= 256 ? parallel : undefined;
}
