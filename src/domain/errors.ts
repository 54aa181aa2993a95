/**
 * The error catalog. Every failure the server reports is one of these classes, each with a stable `code`
 * (documented in docs/errors.md; a test keeps the two in step) and an HTTP status. The mapping to HTTP lives in
 * one place (src/server/error-handler.ts); protocol adapters only choose the body shape.
 */
export abstract class AppError extends Error {
  abstract readonly code: string;
  abstract readonly status: number;
  /** Extra response headers (e.g. Retry-After). */
  readonly headers: Record<string, string> = {};

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The request body or a field in it is malformed. */
export class InvalidRequestError extends AppError {
  readonly code = "invalid_request";
  readonly status = 400;
}

/** The request body is larger than the configured limit. */
export class PayloadTooLargeError extends AppError {
  readonly code = "payload_too_large";
  readonly status = 413;
}

/** The request's header section is larger than Node's limit (16 KiB): refused before any route runs. */
export class HeadersTooLargeError extends AppError {
  readonly code = "headers_too_large";
  readonly status = 431;
}

/**
 * The client stopped sending its request: no byte of the body for AI_SERVER_BODY_TIMEOUT, or headers that never
 * ended. The connection is closed after this answer, so a stalled upload holds nothing for long.
 */
export class ClientTimeoutError extends AppError {
  readonly code = "client_timeout";
  readonly status = 408;
}

/** A model name does not follow the naming rules. */
export class InvalidModelNameError extends AppError {
  readonly code = "invalid_model_name";
  readonly status = 400;
}

/** No model by that name exists in the store. */
export class ModelNotFoundError extends AppError {
  readonly code = "model_not_found";
  readonly status = 404;
  constructor(readonly model: string) {
    super(`model "${model}" not found, try pulling it first`);
  }
}

/** No blob with that digest exists in the store. */
export class BlobNotFoundError extends AppError {
  readonly code = "blob_not_found";
  readonly status = 404;
  constructor(readonly digest: string) {
    super(`blob ${digest} not found`);
  }
}

/** Uploaded bytes do not hash to the digest the client named. */
export class DigestMismatchError extends AppError {
  readonly code = "digest_mismatch";
  readonly status = 400;
  constructor(readonly expected: string, readonly actual: string) {
    super(`digest mismatch: expected ${expected}, got ${actual}`);
  }
}

/** A file is not a GGUF model this server can load (bad magic, truncated, implausible header). */
export class InvalidModelFileError extends AppError {
  readonly code = "invalid_model_file";
  readonly status = 400;
}

/** The model lacks a capability the request needs (tools, insert, thinking, …). */
export class CapabilityError extends AppError {
  readonly code = "unsupported_capability";
  readonly status = 400;
  constructor(readonly model: string, readonly capability: string) {
    super(`"${model}" does not support ${capability}`);
  }
}

/** The input does not fit in the model's context window. */
export class ContextOverflowError extends AppError {
  readonly code = "context_overflow";
  readonly status = 400;
}

/** The model failed to load (engine error, out of memory, unsupported architecture). */
export class ModelLoadError extends AppError {
  readonly code = "model_load_failed";
  readonly status = 500;
}

/** Output constrained by a JSON schema did not validate against that schema. */
export class StructuredOutputError extends AppError {
  readonly code = "structured_output_invalid";
  readonly status = 500;
}

/** The engine failed while generating. */
export class GenerationError extends AppError {
  readonly code = "generation_failed";
  readonly status = 500;
}

/**
 * A process serving a loaded model died on its own (a crash, the OOM killer, `kill -9`): the requests it was
 * serving end with this error (in-band on a stream that had begun). 502: the server itself is fine, the model's
 * process behind it failed; the next request loads the model (or starts its embeddings or rerank process) again,
 * unless it keeps crashing (then its loads cool down: ModelLoadError).
 */
export class EngineCrashedError extends AppError {
  readonly code = "engine_crashed";
  readonly status = 502;
  constructor(
    /** The model's name (the name a request used, else what the engine knows it by). */
    readonly model: string,
    /** What died and how, with its last log lines: `its llama-server process was killed by SIGKILL; …`. */
    readonly detail: string,
    options?: { cause?: unknown },
  ) {
    super(`model "${model}" crashed: ${detail}`, options);
  }
}

/** Too many requests are already waiting. */
export class QueueFullError extends AppError {
  readonly code = "queue_full";
  readonly status = 503;
  constructor(retryAfterSeconds: number) {
    super("server busy, please try again.  maximum pending requests exceeded");
    this.headers["retry-after"] = String(retryAfterSeconds);
    // The OpenAI and Anthropic SDKs prefer this finer one when they retry.
    this.headers["retry-after-ms"] = String(retryAfterSeconds * 1000);
  }
}

/**
 * An API key (or, on an open server, a client address) is over one of its rate limits: requests or tokens per
 * minute, or requests running at once. Carries `Retry-After` (whole seconds) and `retry-after-ms`, which the OpenAI
 * and Anthropic SDKs wait for before they retry, and any extra headers given (the `x-ratelimit-*` ones).
 */
export class RateLimitedError extends AppError {
  readonly code = "rate_limited";
  readonly status = 429;
  constructor(message: string, retryAfterMs: number, headers: Record<string, string> = {}) {
    super(message);
    const ms = Number.isFinite(Number(retryAfterMs)) ? Math.max(1, Math.ceil(Number(retryAfterMs))) : 1000;
    Object.assign(this.headers, headers);
    this.headers["retry-after"] = String(Math.ceil(ms / 1000));
    this.headers["retry-after-ms"] = String(ms);
  }
}

/** The request waited or ran longer than the server's request timeout (AI_SERVER_REQUEST_TIMEOUT). */
export class RequestTimeoutError extends AppError {
  readonly code = "request_timeout";
  readonly status = 504;
}

/**
 * The server is shutting down: a request that arrives now is refused, and one still running at the end of the
 * shutdown's grace period (AI_SERVER_SHUTDOWN_TIMEOUT) is stopped with this error (in-band when streaming).
 */
export class ServerShuttingDownError extends AppError {
  readonly code = "server_shutting_down";
  readonly status = 503;
}

/**
 * The database that holds the server's state (AI_SERVER_DATABASE_URL's PostgreSQL) cannot be reached, refuses the
 * credentials, or failed a query. At start-up the server says so and exits; afterwards a request that needs the
 * state gets this error until the database answers again.
 */
export class DatabaseUnavailableError extends AppError {
  readonly code = "database_unavailable";
  readonly status = 503;
}

/** The model (with its context) can never fit in the memory budget, even with every other model unloaded. */
export class InsufficientMemoryError extends AppError {
  readonly code = "insufficient_memory";
  readonly status = 507;
}

/** No job has that id (it never existed, or it was cancelled and removed). */
export class JobNotFoundError extends AppError {
  readonly code = "job_not_found";
  readonly status = 404;
  constructor(readonly id: string) {
    super(`job "${id}" not found`);
  }
}

/**
 * A stored response (OpenAI's Responses API: `previous_response_id`, GET/DELETE /v1/responses/{id}) or one of its
 * items (`item_reference`) is not there: never stored (`store: false`), deleted, or older than the retention.
 */
export class ResponseNotFoundError extends AppError {
  readonly code = "response_not_found";
  readonly status = 404;
  constructor(readonly what: string, readonly id: string) {
    super(`${what} "${id}" not found: it was not stored, was deleted, or is older than the retention (AI_SERVER_RESPONSES_RETENTION)`);
  }
}

/** The job was cancelled (DELETE /api/jobs/{id}) while a client was waiting for it. */
export class JobCancelledError extends AppError {
  readonly code = "job_cancelled";
  readonly status = 409;
}

/**
 * What was asked for does not exist upstream: a Hugging Face repository, revision or file, an Ollama registry
 * model or tag, or no file of a repository matches the tag. The message says what the repository does contain.
 */
export class UpstreamNotFoundError extends AppError {
  readonly code = "upstream_not_found";
  readonly status = 404;
}

/**
 * The upstream (Hugging Face Hub, Ollama registry) refused access: a gated repository whose terms were not
 * accepted, a private repository, or a missing or invalid token. The message says what to do.
 */
export class UpstreamAccessError extends AppError {
  readonly code = "upstream_access_denied";
  readonly status = 403;
}

/**
 * The upstream failed or answered something unusable (5xx after retries, a malformed answer, a redirect loop): the
 * Hub or a registry for pulls, or the endpoints of a model served by them (none answered, or one failed mid-answer).
 */
export class UpstreamError extends AppError {
  readonly code = "upstream_failed";
  readonly status = 502;
}

/** Downloaded bytes did not verify (sha256 or size), even after the download was retried; nothing was installed. */
export class DownloadVerificationError extends AppError {
  readonly code = "download_corrupt";
  readonly status = 502;
}

/**
 * A model's weights are not on this replica and could not be fetched: no peer replica (AI_SERVER_PEERS) had them
 * with the right sha256, and the source the model was pulled from (its finished pull job) could not provide them
 * either, or there is none. The message gives the reason for each peer and source tried. Not a failed load: the next
 * request tries again (nothing cools down).
 */
export class WeightsUnavailableError extends AppError {
  readonly code = "weights_unavailable";
  readonly status = 503;
}

/** Not enough free disk space for a download or a quantization; nothing was installed. */
export class InsufficientStorageError extends AppError {
  readonly code = "insufficient_storage";
  readonly status = 507;
}

/** A pull would need to substitute another repository (or quantize locally) but the request forbids it. */
export class SubstitutionRefusedError extends AppError {
  readonly code = "substitution_refused";
  readonly status = 409;
}

/** Local quantization failed or cannot run here (no quantize tool, a source that is not F16/BF16/F32). */
export class QuantizationError extends AppError {
  readonly code = "quantization_failed";
  readonly status = 500;
}

/** The client went away or aborted the request. */
export class RequestCancelledError extends AppError {
  readonly code = "request_cancelled";
  readonly status = 499;
  constructor() {
    super("request cancelled by client");
  }
}

/** The Host header names a host this server does not answer for (DNS-rebinding protection). */
export class ForbiddenHostError extends AppError {
  readonly code = "forbidden_host";
  readonly status = 403;
}

/** A browser page from an origin that is not allowed tried to call the API (CSRF protection). */
export class ForbiddenOriginError extends AppError {
  readonly code = "forbidden_origin";
  readonly status = 403;
}

/**
 * Authentication is on and the request carries no API key, or one that is unknown, revoked or expired. Sent with
 * `WWW-Authenticate: Bearer`.
 */
export class UnauthorizedError extends AppError {
  readonly code = "unauthorized";
  readonly status = 401;
  constructor(message: string) {
    super(message);
    this.headers["www-authenticate"] = 'Bearer realm="ai-server"';
  }
}

/** The API key is valid but its scope does not reach this route (an inference key on an admin route). */
export class ForbiddenError extends AppError {
  readonly code = "forbidden";
  readonly status = 403;
}

/** No API key has that id (`DELETE /api/keys/{id}`, `ai-server keys revoke`). */
export class KeyNotFoundError extends AppError {
  readonly code = "key_not_found";
  readonly status = 404;
  constructor(readonly id: string) {
    super(`API key "${id}" not found`);
  }
}

/** The route does not exist. */
export class RouteNotFoundError extends AppError {
  readonly code = "route_not_found";
  readonly status = 404;
}

/** A bug: something that should be impossible happened. */
export class InternalError extends AppError {
  readonly code = "internal_error";
  readonly status = 500;
}

/** Wraps anything thrown that is not an AppError, keeping the original as `cause`. */
export function toAppError(error: unknown): AppError {
  if (error instanceof AppError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new InternalError(message, { cause: error });
}
