import type { BatchItem, CustomBatchingPrioritizationStrategy, PrioritizedBatchItem } from "node-llama-cpp";
import type { ModelStats } from "../engine.js";

type BatchingStats = NonNullable<ModelStats["batching"]>;

/**
 * Watches node-llama-cpp's continuous batching: every decode step of a context goes through its batch-items
 * prioritization strategy, with one item per sequence that has tokens to evaluate. This strategy shares the batch
 * as node-llama-cpp's default ("maximumParallelism") does, every waiting sequence an equal part and the leftover
 * to the clipped ones, higher evaluation priority first, and counts how many sequences each step holds.
 */
export class BatchObserver {
  private batches = 0;
  private multiSequence = 0;
  private maxSequences = 0;

  readonly strategy: CustomBatchingPrioritizationStrategy = ({ items, size }) => {
    const prioritized = shareBatch(items, size);
    this.batches++;
    if (prioritized.length > 1) this.multiSequence++;
    this.maxSequences = Math.max(this.maxSequences, prioritized.length);
    return prioritized;
  };

  stats(): BatchingStats {
    return { batches: this.batches, multiSequence: this.multiSequence, maxSequences: this.maxSequences };
  }
}

/** Every item an equal share of `size` tokens, then what is left to the clipped items, higher priority first. */
export function shareBatch(items: readonly BatchItem[], size: number): PrioritizedBatchItem[] {
  let left = size;
  const share = Math.max(1, Math.floor(size / Math.max(1, items.length)));
  const result: PrioritizedBatchItem[] = [];
  for (const item of items) {
    if (left === 0) break;
    const processAmount = Math.min(item.tokens.length, share, left);
    result.push({ item, processAmount });
    left -= processAmount;
  }
  const clipped = result.filter((r) => r.processAmount < r.item.tokens.length).sort((a, b) => b.item.evaluationPriority - a.item.evaluationPriority);
  for (const entry of clipped) {
    if (left === 0) break;
    const more = Math.min(entry.item.tokens.length - entry.processAmount, left);
    entry.processAmount += more;
    left -= more;
  }
  return result.filter((r) => r.processAmount > 0);
}
