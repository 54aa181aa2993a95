import type { FileHandle } from "node:fs/promises";
import { pipeline } from "node:stream/promises";
import type { Dispatcher } from "undici";
import type { Part } from "./partial-file.js";
import { PartWriter } from "./part-writer.js";
import { describeNetworkError, parseContentRange, requestRange, single, sizeChanged, type RangeResponse } from "./range-request.js";
import type { CheckedRequest } from "./request.js";
import { RangeIgnoredError, RetryableError } from "./transfer-errors.js";

/** What fetching a part needs, shared by all parts of one download. */
export interface PartFetchContext {
  dispatcher: Dispatcher;
  request: CheckedRequest;
  handle: FileHandle;
  stallTimeoutMs: number;
  signal: AbortSignal;
  /** Called after each write to the data file (progress, the hasher's frontier). */
  onWritten(): void;
}

/**
 * One attempt at the rest of a part: requests its remaining bytes and writes them in place. Resolves once the part
 * is complete; throws what requestRange throws, RangeIgnoredError for a 200 that cannot be used, UpstreamError when
 * the file changed size upstream, InsufficientStorageError for a full disk, RetryableError for a broken transfer.
 */
export async function fetchPart(context: PartFetchContext, part: Part): Promise<void> {
  const { request, signal } = context;
  const first = part.start + part.written;
  const response = await requestRange({
    dispatcher: context.dispatcher,
    url: request.url,
    headers: request.headers,
    first,
    last: part.end - 1,
    size: request.size,
    stallTimeoutMs: context.stallTimeoutMs,
    signal,
  });
  try {
    checkAnswer(response, part, first, request.size);
  } catch (error) {
    response.body.destroy();
    throw error;
  }
  const writer = new PartWriter(context.handle, part, context.onWritten);
  try {
    await pipeline(response.body, writer);
  } catch (error) {
    await writer.idle();
    if (signal.aborted) throw error;
    if (writer.failure !== undefined) throw writer.failure;
    throw new RetryableError(describeNetworkError(error, context.stallTimeoutMs));
  }
  const missing = part.end - part.start - part.written;
  if (missing > 0) throw new RetryableError(`the response ended ${missing} bytes early`);
}

/** The answer carries the bytes asked for, of a file of the expected size. */
function checkAnswer(response: RangeResponse, part: Part, first: number, size: number): void {
  const { statusCode, headers, source } = response;
  if (statusCode === 200) {
    // The whole file: usable only when the whole file, from its first byte, is what this part still needs.
    if (part.start !== 0 || part.written !== 0 || part.end !== size) throw new RangeIgnoredError();
    const length = single(headers["content-length"]);
    if (length !== undefined && Number(length) !== size) throw sizeChanged(source, size, Number(length));
    return;
  }
  const range = parseContentRange(single(headers["content-range"]));
  if (range === undefined) throw new RetryableError(`${source} answered 206 without a valid Content-Range`);
  if (range.total !== undefined && range.total !== size) throw sizeChanged(source, size, range.total);
  if (range.first !== first || range.last > part.end - 1) {
    throw new RetryableError(`${source} sent bytes ${range.first}-${range.last} when asked for bytes=${first}-${part.end - 1}`);
  }
}
