/** Where a blob's bytes can come from: a peer replica, or the source a model was pulled from. */
export interface WeightsSource {
  /** For the logs and the error: `peer http://replica-2:11434`, `the Hub file owner/repo: model-Q4_K_M.gguf (…)`. */
  readonly label: string;
  /**
   * Puts the blob `digest` in the blob store, verified (nothing unverified is ever stored); rejects with the reason
   * when it cannot (a SourceRefusal when the source simply does not have it). `progress` is told the bytes received
   * and, once known, the size.
   */
  fetch(digest: string, progress: (bytes: number, total: number | undefined) => void, signal: AbortSignal): Promise<void>;
}

/** A source that cannot provide the blob, for a reason it states (not there, the key refused, another blob served). */
export class SourceRefusal extends Error {
  constructor(
    message: string,
    /** An expected answer (the blob is simply not there): logged at info, not as a warning. */
    readonly quiet = false,
  ) {
    super(message);
    this.name = "SourceRefusal";
  }
}

/** The words of a failure: a connection error's code (`ECONNREFUSED`) rather than undici's "fetch failed". */
export function reasonOf(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause as { code?: unknown; message?: unknown } | undefined;
  if (error.message === "fetch failed" && cause) {
    const detail = typeof cause.code === "string" ? cause.code : typeof cause.message === "string" ? cause.message : "";
    return `unreachable${detail ? ` (${detail})` : ""}`;
  }
  return error.message;
}
