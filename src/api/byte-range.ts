/**
 * The `Range` header of a download, reduced to what a file route serves: one byte range (a client resuming a transfer
 * asks for `bytes=<from>-`), the whole file, or nothing that fits. Several ranges at once are answered with the whole
 * file, as RFC 9110 allows; so is a range whose `If-Range` names another version of the file.
 */

/** What to send: the whole file, the inclusive byte range `start`–`end`, or 416 (nothing of the file in the range). */
export type ByteRange = { kind: "whole" } | { kind: "part"; start: number; end: number } | { kind: "unsatisfiable" };

const SINGLE = /^bytes=(\d*)-(\d*)$/;

/**
 * Reads `range` (the request's Range header) against a file of `size` bytes whose strong ETag is `etag`.
 * `ifRange` (the If-Range header) that is not `etag` makes it the whole file.
 */
export function byteRange(range: string | undefined, ifRange: string | undefined, etag: string, size: number): ByteRange {
  if (range === undefined || (ifRange !== undefined && ifRange !== etag)) return { kind: "whole" };
  const match = SINGLE.exec(range.trim());
  if (!match) return { kind: "whole" }; // several ranges, or another unit: the whole file
  const [, from = "", to = ""] = match;
  if (from === "" && to === "") return { kind: "whole" };
  if (from === "") {
    // The last `to` bytes.
    const length = Number(to);
    if (length === 0 || size === 0) return { kind: "unsatisfiable" };
    return { kind: "part", start: Math.max(0, size - length), end: size - 1 };
  }
  const start = Number(from);
  if (start >= size) return { kind: "unsatisfiable" };
  const end = to === "" ? size - 1 : Math.min(Number(to), size - 1);
  if (end < start) return { kind: "whole" }; // an invalid range is ignored
  return { kind: "part", start, end };
}
