import { formatBytes } from "../domain/byte-size.js";
import type { MemoryEstimate } from "../engine/engine.js";

/**
 * Memory arithmetic for admission, pure. Two pools are tracked side by side: RAM and VRAM. A model fits when
 * it fits in both. Usage is what the scheduler booked for each loaded model (its estimate, or what the engine
 * reports once loaded, whichever is larger), not measured free memory: memory-mapped weights stay "available"
 * to the OS while they are in use, so free memory says little about what a model takes.
 */

export type Memory = MemoryEstimate;

export const NO_MEMORY: Memory = Object.freeze({ ram: 0, vram: 0 });

export interface BudgetSettings {
  /** Configured budgets; unset = the measured total. */
  configured: { ram?: number | undefined; vram?: number | undefined };
  /** Total RAM and VRAM of the machine (VRAM 0 without a GPU). */
  measured: Memory;
  /** Kept free below each budget. */
  headroom: number;
}

/** What the loaded models may take: (configured or measured total) minus the headroom, per pool, never negative. */
export function budgetOf({ configured, measured, headroom }: BudgetSettings): Memory {
  const ram = configured.ram ?? measured.ram;
  const vram = configured.vram ?? measured.vram;
  return { ram: Math.max(0, ram - headroom), vram: vram > 0 ? Math.max(0, vram - headroom) : 0 };
}

export function add(a: Memory, b: Memory): Memory {
  return { ram: a.ram + b.ram, vram: a.vram + b.vram };
}

export function subtract(a: Memory, b: Memory): Memory {
  return { ram: a.ram - b.ram, vram: a.vram - b.vram };
}

export function total(items: Iterable<Memory>): Memory {
  let sum = NO_MEMORY;
  for (const item of items) sum = add(sum, item);
  return sum;
}

export function larger(a: Memory, b: Memory): Memory {
  return { ram: Math.max(a.ram, b.ram), vram: Math.max(a.vram, b.vram) };
}

/** True when `need` fits in `free` in both pools. */
export function fits(need: Memory, free: Memory): boolean {
  return need.ram <= free.ram && need.vram <= free.vram;
}

/** The pools in which `need` does not fit in `free`. */
export function shortPools(need: Memory, free: Memory): Array<keyof Memory> {
  return (["ram", "vram"] as const).filter((pool) => need[pool] > free[pool]);
}

/** "2.10 GiB of RAM and 1.00 GiB of VRAM" (pools with nothing needed are left out). */
export function describe(memory: Memory): string {
  const parts = [];
  if (memory.ram > 0 || memory.vram === 0) parts.push(`${formatBytes(memory.ram)} of RAM`);
  if (memory.vram > 0) parts.push(`${formatBytes(memory.vram)} of VRAM`);
  return parts.join(" and ");
}
