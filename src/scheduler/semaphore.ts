import { RequestCancelledError } from "../domain/errors.js";

/**
 * A counting semaphore with a FIFO of waiters; a waiter whose signal aborts leaves the queue at once. Closing it
 * (its model crashed) turns every waiter away, and every later acquire, with the closing error.
 */
export class Semaphore {
  private used = 0;
  private readonly queue: Array<{ grant: () => void; refuse: (error: unknown) => void }> = [];
  private closedWith?: unknown;

  constructor(private capacity: number) {}

  /** Sets how many may hold it at once (a model's slots are known once it is loaded); more room grants waiters. */
  resize(capacity: number): void {
    this.capacity = capacity;
    while (this.used < this.capacity && this.queue.length > 0) this.queue.shift()?.grant();
  }

  get inUse(): number {
    return this.used;
  }

  get available(): number {
    return this.capacity - this.used;
  }

  get waiting(): number {
    return this.queue.length;
  }

  acquire(signal: AbortSignal): Promise<void> {
    if (signal.aborted) return Promise.reject(new RequestCancelledError());
    if (this.closedWith !== undefined) return Promise.reject(this.closedWith);
    if (this.used < this.capacity && this.queue.length === 0) {
      this.used++;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const leave = (): void => {
        signal.removeEventListener("abort", onAbort);
        const index = this.queue.indexOf(waiter);
        if (index !== -1) this.queue.splice(index, 1);
      };
      const waiter = {
        grant: (): void => {
          leave();
          this.used++;
          resolve();
        },
        refuse: (error: unknown): void => {
          leave();
          reject(error);
        },
      };
      const onAbort = (): void => waiter.refuse(new RequestCancelledError());
      signal.addEventListener("abort", onAbort, { once: true });
      this.queue.push(waiter);
    });
  }

  release(): void {
    this.used--;
    this.queue.shift()?.grant();
  }

  /** Refuses every waiter, and every later acquire, with `error` (holders still release). */
  close(error: unknown): void {
    this.closedWith = error;
    for (const waiter of [...this.queue]) waiter.refuse(error);
  }
}
