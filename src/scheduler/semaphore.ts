import { RequestCancelledError } from "../domain/errors.js";

/** A counting semaphore with a FIFO of waiters; a waiter whose signal aborts leaves the queue at once. */
export class Semaphore {
  private used = 0;
  private readonly queue: Array<() => void> = [];

  constructor(private readonly capacity: number) {}

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
    if (this.used < this.capacity && this.queue.length === 0) {
      this.used++;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const grant = (): void => {
        signal.removeEventListener("abort", onAbort);
        this.used++;
        resolve();
      };
      const onAbort = (): void => {
        const index = this.queue.indexOf(grant);
        if (index !== -1) this.queue.splice(index, 1);
        reject(new RequestCancelledError());
      };
      signal.addEventListener("abort", onAbort, { once: true });
      this.queue.push(grant);
    });
  }

  release(): void {
    this.used--;
    const next = this.queue.shift();
    if (next) next();
  }
}
