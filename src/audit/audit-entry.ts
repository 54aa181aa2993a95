/** What the audit log keeps of one request (src/audit/audit-log.ts writes it, GET /api/audit reads it). */

/** One request that reached a route, as recorded when its response ended (or its client left). */
export interface AuditEntry {
  /** When the request arrived, in ms since the epoch. */
  time: number;
  /** Its id (the `x-request-id` it was answered with, and `reqId` in the log). */
  requestId: string;
  /** The key it was made with; null when none authenticated it (an open server, or a refused key). */
  keyId: string | null;
  keyName: string | null;
  /** The client's address (the socket's peer). */
  clientAddress: string;
  method: string;
  /** The route's pattern (`/v1/chat/completions`, `/api/jobs/:id`), never the raw URL with its query. */
  route: string;
  /** The model a generation ran on, else the model the body names (normalised); null when none. */
  model: string | null;
  /** The status the client got; 499 for a client that left before any was sent. */
  status: number;
  /** Tokens of every generation of the request: all prompt tokens, of which reused from a cache, and generated. */
  promptTokens: number;
  cachedTokens: number;
  completionTokens: number;
  /** Arrival to the end of the response (or the client's departure). */
  durationMs: number;
  /** The admin change it made (`key.create`, `model.delete`, …; see actions.ts); null for anything else or a failure. */
  action: string | null;
  /** What the change was made to: a model's name, a key's or job's id, a blob's digest. */
  target: string | null;
  /** The client went away before the response was complete (a stream cut short). */
  aborted: boolean;
  /** The request body as JSON text, only with AI_SERVER_AUDIT_CONTENT=1 (cut at the content bound). */
  requestBody: string | null;
  /** The generated text, one string per generation, only with AI_SERVER_AUDIT_CONTENT=1. */
  output: string[] | null;
  /** The body or the output was cut at the content bound. */
  contentTruncated: boolean;
}

/** An entry as stored: with its id, which orders entries (newest highest) and pages them. */
export interface StoredAuditEntry extends AuditEntry {
  id: number;
}
