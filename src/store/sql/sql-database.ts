/**
 * The one way the stores reach their database: the embedded SQLite file (the default) or a PostgreSQL server shared
 * by several replicas (AI_SERVER_DATABASE_URL). The stores write SQL that both dialects accept, with `?`
 * placeholders; where the dialects differ they ask `dialect`. Every call is asynchronous, whatever is underneath.
 */

/** Which SQL the database speaks. */
export type Dialect = "sqlite" | "postgres";

/** A value bound to a `?` placeholder. Booleans are stored as 0/1 by the callers, times as milliseconds. */
export type SqlValue = string | number | bigint | Buffer | null;

/** A row as read: column name → value (TEXT as string, INTEGER/BIGINT as number, BLOB/BYTEA as Buffer, NULL as null). */
export type SqlRow = Record<string, unknown>;

/** Statements on one connection (the database's, or a transaction's). */
export interface SqlExecutor {
  readonly dialect: Dialect;
  /** Every row of a query. */
  all(sql: string, params?: readonly SqlValue[]): Promise<SqlRow[]>;
  /** The first row of a query, or undefined. */
  get(sql: string, params?: readonly SqlValue[]): Promise<SqlRow | undefined>;
  /** A statement run for its effect: how many rows it changed. */
  run(sql: string, params?: readonly SqlValue[]): Promise<{ changes: number }>;
}

/** How a transaction commits. */
export interface TransactionOptions {
  /**
   * Commit without waiting for the disk (SQLite: synchronous=NORMAL for that commit; PostgreSQL: synchronous_commit
   * off): a crash of this server loses nothing, a power cut may lose the last commits. For the audit log's batches.
   */
  lazy?: boolean;
}

/** A database: statements, transactions, and the end of it. */
export interface SqlDatabase extends SqlExecutor {
  /** Where it is, for messages: the SQLite file, or `postgres://user@host:port/db` (never a password). */
  readonly label: string;
  /**
   * Runs `work` in one transaction: committed when it resolves, rolled back when it throws. Statements inside go
   * through `tx` only (the database's own methods wait for the transaction to end).
   */
  transaction<T>(work: (tx: SqlExecutor) => Promise<T>, options?: TransactionOptions): Promise<T>;
  /**
   * A number that changes whenever another connection commits (SQLite's data_version), read without a round trip;
   * undefined where nothing cheaper than a query can tell (PostgreSQL).
   */
  changeCounter(): number | undefined;
  /**
   * Calls `listener` with each notification sent on `channel` (PostgreSQL's LISTEN/NOTIFY, on a connection of its
   * own that is re-opened when lost; `listener` is also called with no payload after each reconnection, since
   * notifications may have been missed). Returns the function that stops listening. Where the dialect has no such
   * thing (SQLite), it never calls `listener`.
   */
  listen(channel: string, listener: (payload?: string) => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
}
