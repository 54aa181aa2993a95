import type { FileHandle } from "node:fs/promises";
import { Writable } from "node:stream";
import { toStorageError } from "./disk-space.js";
import type { Part } from "./partial-file.js";
import { RetryableError } from "./transfer-errors.js";

/** Bytes buffered while a write is on its way to disk; they go out together in the next writev. */
const BUFFERED_BYTES = 1 << 20;

/**
 * Writes a part's incoming bytes at their place in the data file: positional writev of the Buffers as they come,
 * coalesced while a write is in flight, so memory stays at about a megabyte per connection and a slow disk slows
 * the socket (backpressure). `part.written` grows only once bytes are written. The error that stopped it, if it was
 * its own (disk full, too many bytes), is kept in `failure`.
 */
export class PartWriter extends Writable {
  failure: unknown;
  private inFlight: Promise<void> = Promise.resolve();

  constructor(
    private readonly handle: FileHandle,
    private readonly part: Part,
    private readonly onWritten: () => void,
  ) {
    super({ highWaterMark: BUFFERED_BYTES });
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (error?: Error | null) => void): void {
    this.inFlight = this.put([chunk]);
    this.inFlight.then(() => done(), done);
  }

  override _writev(chunks: { chunk: Buffer }[], done: (error?: Error | null) => void): void {
    this.inFlight = this.put(chunks.map((entry) => entry.chunk));
    this.inFlight.then(() => done(), done);
  }

  /** Settles once no write is in flight (after an error, a write may still be on its way to the file). */
  async idle(): Promise<void> {
    await this.inFlight.catch(() => undefined);
  }

  private async put(buffers: Buffer[]): Promise<void> {
    const length = buffers.reduce((sum, buffer) => sum + buffer.length, 0);
    const room = this.part.end - this.part.start - this.part.written;
    if (length > room) throw this.fail(new RetryableError(`the server sent more bytes than bytes ${this.part.start}-${this.part.end - 1} holds`));
    let pending = buffers;
    while (pending.length > 0) {
      let bytesWritten: number;
      try {
        ({ bytesWritten } = await this.handle.writev(pending, this.part.start + this.part.written));
      } catch (error) {
        throw this.fail(toStorageError(error, "the partial download"));
      }
      if (bytesWritten === 0) throw this.fail(new Error("the partial download accepts no more bytes"));
      this.part.written += bytesWritten;
      pending = dropFront(pending, bytesWritten);
    }
    this.onWritten();
  }

  private fail(error: unknown): unknown {
    this.failure = error;
    return error;
  }
}

/** The buffers left after the first `bytes` of them were written (a short write). */
function dropFront(buffers: Buffer[], bytes: number): Buffer[] {
  let skip = bytes;
  const rest: Buffer[] = [];
  for (const buffer of buffers) {
    if (skip >= buffer.length) skip -= buffer.length;
    else {
      rest.push(skip > 0 ? buffer.subarray(skip) : buffer);
      skip = 0;
    }
  }
  return rest;
}
