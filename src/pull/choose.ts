import path from "node:path";
import { formatBytes } from "../domain/byte-size.js";
import { InsufficientMemoryError, UpstreamNotFoundError } from "../domain/errors.js";
import { describe, fits, type Memory } from "../scheduler/memory.js";
import type { GgufCandidate } from "./hub/gguf-candidates.js";
import type { HubSource } from "./pull-name.js";
import { bitsPerWeight, DEFAULT_QUANTIZATION, isFloatType, isQuantizableType, normalizeQuantization } from "./quantization-names.js";

/** What a pull takes from a repository, and why. */
export interface Choice {
  candidate: GgufCandidate;
  /** Set when the file is an unpacked float model to be quantized here to this type. */
  quantizeTo?: string;
  /** What the model will need to load (for a local quantization: the quantized model). */
  need: Memory;
  /** One sentence: what was chosen and why. */
  reason: string;
  warnings: string[];
  /** Every candidate, most precise first, with whether it fits. */
  alternatives: Array<{ quantization?: string; file: string; size: number; fits: boolean }>;
}

export interface ChoiceInput {
  repo: string;
  candidates: readonly GgufCandidate[];
  tag: HubSource["tag"];
  /** The memory models may take (the scheduler's budget). */
  budget: Memory;
  /** What a candidate needs to load; with `size`, what it would need with weights of that size (a quantization of it). */
  needOf: (candidate: GgufCandidate, size?: number) => Memory;
}

/**
 * Chooses the file, pure:
 * - no tag: Q4_K_M when the repository has it and it fits, else the most precise file that fits;
 * - `auto`: the most precise file that fits (unpacked floats rank above every quantization);
 * - a quantization: that file, even when it does not fit (with a warning); when the repository lacks it but has an
 *   F16/BF16/F32 file, that file, to be quantized here;
 * - a file name: that file (or split model).
 * Throws UpstreamNotFoundError when the tag matches nothing, InsufficientMemoryError when nothing fits.
 */
export function chooseFile(input: ChoiceInput): Choice {
  const ranked = [...input.candidates].sort((a, b) => bitsPerWeight(b.quantization) - bitsPerWeight(a.quantization) || b.size - a.size);
  const judged = ranked.map((candidate) => ({ candidate, need: input.needOf(candidate), fits: fits(input.needOf(candidate), input.budget) }));
  const alternatives = judged.map(({ candidate, fits: ok }) => ({ ...(candidate.quantization && { quantization: candidate.quantization }), file: candidate.file, size: candidate.size, fits: ok }));
  const budget = describe(input.budget);
  const choose = (pick: (typeof judged)[number], reason: string, warnings: string[] = []): Choice => ({ candidate: pick.candidate, need: pick.need, reason, warnings, alternatives });
  const bestFit = (): (typeof judged)[number] => {
    const found = judged.find((j) => j.fits);
    if (found) return found;
    const smallest = [...judged].sort((a, b) => a.need.ram + a.need.vram - (b.need.ram + b.need.vram))[0];
    const example = smallest?.candidate.quantization ?? path.posix.basename(smallest?.candidate.file ?? "");
    throw new InsufficientMemoryError(
      `no GGUF file of "${input.repo}" fits the memory budget of ${budget}: the smallest, ${labelOf(smallest?.candidate)} (${formatBytes(smallest?.candidate.size ?? 0)}), ` +
        `needs about ${describe(smallest?.need ?? { ram: 0, vram: 0 })}; name a quantization (:${example}) to download one anyway, or raise the budget`,
    );
  };

  const tag = input.tag;
  if (tag === "default" || tag === "auto") {
    const preferred = tag === "default" ? judged.find((j) => j.candidate.quantization === DEFAULT_QUANTIZATION) : undefined;
    if (preferred?.fits) return choose(preferred, `${DEFAULT_QUANTIZATION}, the default: needs about ${describe(preferred.need)}, within the budget of ${budget}`);
    const pick = bestFit();
    const why = preferred ? ` (${DEFAULT_QUANTIZATION} would need ${describe(preferred.need)})` : tag === "default" ? ` (the repository has no ${DEFAULT_QUANTIZATION})` : "";
    return choose(pick, `${labelOf(pick.candidate)}, the most precise file that fits the budget of ${budget}: needs about ${describe(pick.need)}${why}`);
  }

  const wanted = normalizeQuantization(tag.text);
  const byQuantization = judged.find((j) => j.candidate.quantization === wanted);
  const byFile = judged.find((j) => matchesFile(j.candidate, tag.text));
  const asked = byQuantization ?? byFile;
  if (asked) {
    const how = byQuantization ? `${wanted}, as asked` : `${asked.candidate.file}, as asked${asked.candidate.quantization ? ` (${asked.candidate.quantization})` : ""}`;
    if (asked.fits) return choose(asked, `${how}: needs about ${describe(asked.need)}, within the budget of ${budget}`);
    return choose(asked, `${how}: needs about ${describe(asked.need)}`, [overBudget(labelOf(asked.candidate), asked.need, budget)]);
  }
  const source = isQuantizableType(wanted) ? judged.find((j) => isFloatType(j.candidate.quantization)) : undefined;
  if (source) {
    const size = Math.round((source.candidate.size * bitsPerWeight(wanted)) / bitsPerWeight(source.candidate.quantization));
    const need = input.needOf(source.candidate, size);
    const reason = `${wanted} is not in the repository: downloading ${labelOf(source.candidate)} (${formatBytes(source.candidate.size)}) and quantizing it to ${wanted} here (about ${formatBytes(size)}, needs about ${describe(need)} to load)`;
    return { candidate: source.candidate, quantizeTo: wanted, need, reason, warnings: fits(need, input.budget) ? [] : [overBudget(wanted, need, budget)], alternatives };
  }
  const offered = judged.map((j) => labelOf(j.candidate)).join(", ");
  throw new UpstreamNotFoundError(`"${tag.text}" matches no GGUF file of "${input.repo}": it has ${offered || "none"}`);
}

function matchesFile(candidate: GgufCandidate, text: string): boolean {
  const wanted = text.toLowerCase().replace(/\.gguf$/, "");
  return candidate.files.some((file) => {
    const name = file.path.toLowerCase().replace(/\.gguf$/, "");
    return name === wanted || path.posix.basename(name) === wanted;
  }) || path.posix.basename(candidate.file.toLowerCase()).replace(/-\d{5}-of-\d{5}\.gguf$/, "") === wanted;
}

function labelOf(candidate: GgufCandidate | undefined): string {
  if (!candidate) return "none";
  return candidate.quantization ?? path.posix.basename(candidate.file);
}

function overBudget(what: string, need: Memory, budget: string): string {
  return `${what} needs about ${describe(need)}, more than the memory budget of ${budget}: it is downloaded anyway, but will not load unless the budget grows (":auto" picks the most precise file that fits)`;
}
