import { z } from "zod";
import type { SqlDatabase, SqlValue } from "../store/database.js";
import type { AuditEntry, StoredAuditEntry } from "./audit-entry.js";

/** How the audit log keeps and writes its rows; the clock and batch sizes are for tests. */
export interface AuditLogOptions {
  /** Rows older than this are pruned; 0 = no audit log (nothing is recorded). */
  retentionMs: number;
  now?: () => number;
  /** Rows written in one transaction at most; a full batch is written at once. */
  batchSize?: number;
  /** Longest a recorded row waits before its batch is written. */
  flushMs?: number;
  /** Told when a batch could not be written (its rows are lost). */
  onError?: (error: unknown, rows: number) => void;
}

/** Which rows a query returns: every field is optional but the page size. Newest first. */
export interface AuditQuery {
  /** A key's id or name. */
  key?: string;
  /** A model name as the log spells it (see auditModelName). */
  model?: string;
  route?: string;
  /** Statuses from min to max (inclusive): one status, or a class such as 400–499. */
  status?: { min: number; max: number };
  /** An action name, or "*" for any admin change. */
  action?: string;
  /** Arrival times (ms), inclusive. */
  since?: number;
  until?: number;
  limit: number;
  /** Only rows with an id below this (the previous page's cursor). */
  before?: number;
}

/** One page: entries newest first, and where the next page starts (undefined on the last page). */
export interface AuditPage {
  entries: StoredAuditEntry[];
  nextBefore?: number;
}

const DEFAULT_BATCH_SIZE = 100;
const DEFAULT_FLUSH_MS = 100;

const COLUMNS = [
  "time", "request_id", "key_id", "key_name", "client_address", "method", "route", "model", "status", "prompt_tokens",
  "cached_tokens", "completion_tokens", "duration_ms", "action", "target", "aborted", "request_body", "output", "content_truncated",
] as const;

const rowSchema = z.object({
  id: z.number(),
  time: z.number(),
  request_id: z.string(),
  key_id: z.string().nullable(),
  key_name: z.string().nullable(),
  client_address: z.string(),
  method: z.string(),
  route: z.string(),
  model: z.string().nullable(),
  status: z.number(),
  prompt_tokens: z.number(),
  cached_tokens: z.number(),
  completion_tokens: z.number(),
  duration_ms: z.number(),
  action: z.string().nullable(),
  target: z.string().nullable(),
  aborted: z.number(),
  request_body: z.string().nullable(),
  output: z.string().nullable(),
  content_truncated: z.number(),
});

/**
 * The audit log, in the `audit_log` table of the server's one database: what each request that reached a route did
 * (who, from where, which route and model, the status, tokens, duration, the admin change it made).
 *
 * Writing costs the request almost nothing: `record` only queues the row; queued rows are written by one INSERT
 * per row inside one transaction, when 100 are waiting or 100 ms after the first, and on `close`, one batch at a
 * time. A batch commits without waiting for the disk (a lazy transaction: SQLite's synchronous=NORMAL, PostgreSQL's
 * synchronous_commit off): a kill -9 of the server loses only the rows of the last 100 ms (still queued), a power
 * cut also what the disk had not yet synced. Reads write the queued rows first, so they see every request that has
 * ended on this server (and every batch other replicas have written).
 */
export class AuditLog {
  private readonly retentionMs: number;
  private readonly now: () => number;
  private readonly batchSize: number;
  private readonly flushMs: number;
  private readonly onError: (error: unknown, rows: number) => void;
  private queue: AuditEntry[] = [];
  private timer: NodeJS.Timeout | undefined;
  /** The batch being written; the next waits for it. */
  private writing: Promise<void> = Promise.resolve();
  private closed = false;
  /** Rows whose model equals a parameter, without case (SQLite's column is NOCASE; PostgreSQL compares lower()). */
  private readonly sameModel: string;

  constructor(private readonly db: SqlDatabase, options: AuditLogOptions) {
    this.retentionMs = Math.max(0, options.retentionMs);
    this.now = options.now ?? Date.now;
    this.batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
    this.flushMs = options.flushMs ?? DEFAULT_FLUSH_MS;
    this.onError = options.onError ?? (() => undefined);
    this.sameModel = db.dialect === "postgres" ? "lower(model) = lower(?)" : "model = ?";
  }

  /** Whether requests are recorded at all (a retention above 0). */
  get enabled(): boolean {
    return this.retentionMs > 0;
  }

  /** The clock entries are timed by. */
  time(): number {
    return this.now();
  }

  /** Queues an entry; it is written with its batch. Nothing happens when the log is off or closed. */
  record(entry: AuditEntry): void {
    if (!this.enabled || this.closed) return;
    this.queue.push(entry);
    if (this.queue.length >= this.batchSize) void this.flush();
    else this.timer ??= setTimeout(() => void this.flush(), this.flushMs).unref();
  }

  /** Writes the queued entries now, in one transaction (after the batch being written, if any). */
  flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    const rows = this.queue;
    this.queue = [];
    if (rows.length > 0) {
      const insert = `INSERT INTO audit_log (${COLUMNS.join(", ")}) VALUES (${COLUMNS.map(() => "?").join(", ")})`;
      this.writing = this.writing.then(() =>
        this.db
          .transaction(
            async (tx) => {
              for (const row of rows) await tx.run(insert, toRow(row));
            },
            { lazy: true },
          )
          .catch((error: unknown) => this.onError(error, rows.length)),
      );
    }
    return this.writing;
  }

  /** A page of entries matching `query`, newest first (by id: the order they were recorded in). */
  async query(query: AuditQuery): Promise<AuditPage> {
    await this.flush();
    const where: string[] = [];
    const values: SqlValue[] = [];
    const when = (condition: string, ...args: SqlValue[]): void => {
      where.push(condition);
      values.push(...args);
    };
    if (query.key !== undefined) when("(key_id = ? OR key_name = ?)", query.key, query.key);
    if (query.model !== undefined) when(this.sameModel, query.model);
    if (query.route !== undefined) when("route = ?", query.route);
    if (query.status !== undefined) when("status BETWEEN ? AND ?", query.status.min, query.status.max);
    if (query.action === "*") when("action IS NOT NULL");
    else if (query.action !== undefined) when("action = ?", query.action);
    if (query.since !== undefined) when("time >= ?", query.since);
    if (query.until !== undefined) when("time <= ?", query.until);
    if (query.before !== undefined) when("id < ?", query.before);
    const sql = `SELECT * FROM audit_log ${where.length > 0 ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY id DESC LIMIT ?`;
    const rows = (await this.db.all(sql, [...values, query.limit + 1])).map(fromRow);
    const entries = rows.slice(0, query.limit);
    const last = entries.at(-1);
    return rows.length > query.limit && last !== undefined ? { entries, nextBefore: last.id } : { entries };
  }

  /** Removes the entries older than the retention (all of them when the log is off); returns how many went. */
  async prune(): Promise<number> {
    await this.flush();
    const cutoff = this.enabled ? this.now() - this.retentionMs : Number.MAX_SAFE_INTEGER;
    return (await this.db.run("DELETE FROM audit_log WHERE time < ?", [cutoff])).changes;
  }

  /** Writes what is queued; later entries are dropped (call it before the database closes). */
  async close(): Promise<void> {
    this.closed = true;
    await this.flush();
  }
}

function toRow(entry: AuditEntry): SqlValue[] {
  return [
    entry.time,
    entry.requestId,
    entry.keyId,
    entry.keyName,
    entry.clientAddress,
    entry.method,
    entry.route,
    entry.model,
    entry.status,
    entry.promptTokens,
    entry.cachedTokens,
    entry.completionTokens,
    entry.durationMs,
    entry.action,
    entry.target,
    entry.aborted ? 1 : 0,
    entry.requestBody,
    entry.output === null ? null : JSON.stringify(entry.output),
    entry.contentTruncated ? 1 : 0,
  ];
}

function fromRow(value: unknown): StoredAuditEntry {
  const row = rowSchema.parse(value);
  return {
    id: row.id,
    time: row.time,
    requestId: row.request_id,
    keyId: row.key_id,
    keyName: row.key_name,
    clientAddress: row.client_address,
    method: row.method,
    route: row.route,
    model: row.model,
    status: row.status,
    promptTokens: row.prompt_tokens,
    cachedTokens: row.cached_tokens,
    completionTokens: row.completion_tokens,
    durationMs: row.duration_ms,
    action: row.action,
    target: row.target,
    aborted: row.aborted !== 0,
    requestBody: row.request_body,
    output: row.output === null ? null : (JSON.parse(row.output) as string[]),
    contentTruncated: row.content_truncated !== 0,
  };
}
