/**
 * A push-to-pull bridge: callback-style producers `push` items, one consumer iterates them. The producer ends the
 * stream with `end()` or `fail(error)`. If the consumer stops iterating early, `onCancel` runs (use it to abort
 * the producer). Items are buffered without limit, which is fine for token streams (the producer is the model).
 */
export class EventStream<T> implements AsyncIterable<T> {
  private readonly items: T[] = [];
  private done = false;
  private error: unknown;
  private failed = false;
  private wake?: () => void;

  constructor(private readonly onCancel: () => void = () => {}) {}

  push(item: T): void {
    if (this.done) return;
    this.items.push(item);
    this.notify();
  }

  end(): void {
    this.done = true;
    this.notify();
  }

  fail(error: unknown): void {
    if (this.done) return;
    this.error = error;
    this.failed = true;
    this.done = true;
    this.notify();
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    let finished = false;
    try {
      for (;;) {
        const item = this.items.shift();
        if (item !== undefined) {
          yield item;
          continue;
        }
        if (this.done) {
          finished = true;
          if (this.failed) throw this.error;
          return;
        }
        await new Promise<void>((resolve) => (this.wake = resolve));
      }
    } finally {
      if (!finished) this.onCancel();
    }
  }
}
