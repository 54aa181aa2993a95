import pg from "pg";
import { DatabaseUnavailableError } from "../../domain/errors.js";
import { numberedPlaceholders } from "./placeholders.js";
import { POSTGRES_MIGRATIONS } from "./postgres-migrations.js";
import type { SqlDatabase, SqlExecutor, SqlRow, SqlValue, TransactionOptions } from "./sql-database.js";

/** Connections the pool opens at most, by default. */
export const DEFAULT_POOL_SIZE = 10;
/** How long opening a connection may take before it counts as unreachable. */
const CONNECT_TIMEOUT_MS = 10_000;
/** Idle pooled connections are closed after this. */
const IDLE_TIMEOUT_MS = 30_000;
/** Every replica takes this advisory lock to migrate, so that two starting together apply each step once. */
const MIGRATION_LOCK = 7_361_042_517;
/** Waits between attempts to re-open a lost LISTEN connection: doubling up to the last. */
const LISTEN_RETRY_MS = [250, 500, 1000, 2000, 5000];

const INT8_OID = 20;

/** BIGINT columns (times in ms, counts, ids) read as numbers; pg's default is strings, for values beyond 2^53. */
const types: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: string) => {
    if (oid === INT8_OID && format !== "binary") return (value: string) => (Number.isSafeInteger(Number(value)) ? Number(value) : value);
    return pg.types.getTypeParser(oid, format as "text");
  }) as typeof pg.types.getTypeParser,
};

/** How to open the pool. */
export interface PostgresOptions {
  /** Connections at most (default DEFAULT_POOL_SIZE). */
  poolSize?: number;
  /** Told of errors on idle connections and of lost LISTEN connections (the pool replaces them by itself). */
  warn?: (message: string) => void;
}

/**
 * PostgreSQL through a `pg` Pool: the state shared by every replica given the same AI_SERVER_DATABASE_URL. `?`
 * placeholders become `$n` here (once per SQL text); BIGINT comes back as a number. The schema is brought up to
 * date at open, in one transaction under an advisory lock.
 */
export class PostgresDatabase implements SqlDatabase {
  readonly dialect = "postgres" as const;
  private readonly translated = new Map<string, string>();

  private constructor(
    private readonly pool: pg.Pool,
    private readonly url: string,
    readonly label: string,
    private readonly warn: (message: string) => void,
  ) {}

  /**
   * Connects and migrates. Throws DatabaseUnavailableError naming the server (never the password) when it cannot be
   * reached, refuses the credentials or has no such database.
   */
  static async open(url: string, options: PostgresOptions = {}): Promise<PostgresDatabase> {
    const label = postgresLabel(url);
    const warn = options.warn ?? (() => undefined);
    const pool = new pg.Pool({
      connectionString: url,
      max: options.poolSize ?? DEFAULT_POOL_SIZE,
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      idleTimeoutMillis: IDLE_TIMEOUT_MS,
      types,
    });
    // An idle connection the server dropped: the pool discards it; without a listener it would end the process.
    pool.on("error", (error) => warn(`PostgreSQL (${label}): an idle connection failed: ${error.message}`));
    const db = new PostgresDatabase(pool, url, label, warn);
    try {
      await db.migrate();
    } catch (error) {
      await pool.end().catch(() => undefined);
      throw unavailable(error, label);
    }
    return db;
  }

  async all(sql: string, params: readonly SqlValue[] = []): Promise<SqlRow[]> {
    return (await this.pool.query(this.sql(sql), bindable(params))).rows as SqlRow[];
  }

  async get(sql: string, params?: readonly SqlValue[]): Promise<SqlRow | undefined> {
    return (await this.all(sql, params))[0];
  }

  async run(sql: string, params: readonly SqlValue[] = []): Promise<{ changes: number }> {
    return { changes: (await this.pool.query(this.sql(sql), bindable(params))).rowCount ?? 0 };
  }

  async transaction<T>(work: (tx: SqlExecutor) => Promise<T>, options: TransactionOptions = {}): Promise<T> {
    const client = await this.pool.connect();
    let broken: Error | undefined;
    try {
      await client.query("BEGIN");
      if (options.lazy) await client.query("SET LOCAL synchronous_commit = off");
      const result = await work(this.on(client));
      await client.query("COMMIT");
      return result;
    } catch (error) {
      await client.query("ROLLBACK").catch((failure: unknown) => (broken = failure instanceof Error ? failure : new Error(String(failure))));
      throw error;
    } finally {
      client.release(broken);
    }
  }

  changeCounter(): undefined {
    return undefined;
  }

  async listen(channel: string, listener: (payload?: string) => void): Promise<() => Promise<void>> {
    const listening = new Listener(this.url, channel, listener, (message) => this.warn(`PostgreSQL (${this.label}): ${message}`));
    await listening.start();
    return () => listening.stop();
  }

  async close(): Promise<void> {
    await this.pool.end();
  }

  private async migrate(): Promise<void> {
    await this.transaction(async (tx) => {
      await tx.run("SELECT pg_advisory_xact_lock(?)", [MIGRATION_LOCK]);
      await tx.run("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)");
      const row = await tx.get("SELECT version FROM schema_version");
      if (row === undefined) await tx.run("INSERT INTO schema_version (version) VALUES (0)");
      const version = Number(row?.version ?? 0);
      // Several statements in one step: the simple query protocol (no parameters) runs them all.
      for (let i = version; i < POSTGRES_MIGRATIONS.length; i++) await tx.run(POSTGRES_MIGRATIONS[i] ?? "");
      if (version < POSTGRES_MIGRATIONS.length) await tx.run("UPDATE schema_version SET version = ?", [POSTGRES_MIGRATIONS.length]);
    });
  }

  private on(client: pg.PoolClient): SqlExecutor {
    return {
      dialect: "postgres",
      all: async (sql, params = []) => (await client.query(this.sql(sql), bindable(params))).rows as SqlRow[],
      get: async (sql, params = []) => (await client.query(this.sql(sql), bindable(params))).rows[0] as SqlRow | undefined,
      run: async (sql, params = []) => ({ changes: (await client.query(this.sql(sql), bindable(params))).rowCount ?? 0 }),
    };
  }

  private sql(sql: string): string {
    let numbered = this.translated.get(sql);
    if (numbered === undefined) {
      numbered = numberedPlaceholders(sql);
      this.translated.set(sql, numbered);
    }
    return numbered;
  }
}

/**
 * A LISTEN on a connection of its own (a pooled one would be handed to other queries). When the connection is lost
 * it is opened again, waiting longer each time up to 5 s; after each reconnection `listener` is called without a
 * payload, since notifications sent meanwhile are lost.
 */
class Listener {
  private client: pg.Client | undefined;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private failures = 0;

  constructor(
    private readonly url: string,
    private readonly channel: string,
    private readonly listener: (payload?: string) => void,
    private readonly warn: (message: string) => void,
  ) {}

  async start(): Promise<void> {
    const client = new pg.Client({ connectionString: this.url, connectionTimeoutMillis: CONNECT_TIMEOUT_MS, types });
    this.client = client;
    let lost = false;
    const reconnect = (error: Error): void => {
      if (lost || this.stopped) return;
      lost = true;
      this.warn(`the connection listening for changes was lost (${error.message}); reconnecting`);
      void client.end().catch(() => undefined);
      this.retry();
    };
    client.on("error", reconnect);
    client.on("end", () => reconnect(new Error("connection ended")));
    client.on("notification", (message) => {
      if (message.channel === this.channel) this.listener(message.payload);
    });
    await client.connect();
    await client.query(`LISTEN "${this.channel.replace(/"/g, '""')}"`);
    if (this.failures > 0) this.listener();
    this.failures = 0;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.client?.end().catch(() => undefined);
  }

  private retry(): void {
    const wait = LISTEN_RETRY_MS[Math.min(this.failures, LISTEN_RETRY_MS.length - 1)] ?? 5000;
    this.failures++;
    clearTimeout(this.timer); // a failure reported twice (an error, then the end) retries once
    this.timer = setTimeout(() => {
      if (this.stopped) return;
      this.start().catch((error: unknown) => {
        this.warn(`listening for changes failed again (${error instanceof Error ? error.message : String(error)})`);
        void this.client?.end().catch(() => undefined);
        this.retry();
      });
    }, wait);
    this.timer.unref();
  }
}

/**
 * Parameters as PostgreSQL takes them. Its text cannot hold NUL (SQLite's can): a NUL in a string becomes U+FFFD, so
 * that a request naming an id with one (`/v1/responses/%00`) finds nothing instead of failing, and an audit row
 * that quotes one is written instead of failing its whole batch.
 */
function bindable(params: readonly SqlValue[]): unknown[] {
  return params.map((value) => (typeof value === "string" && value.includes("\u0000") ? value.replaceAll("\u0000", "\uFFFD") : value));
}

/** `postgres://user@host:port/database`: the URL without its password (and without its options), for messages. */
export function postgresLabel(url: string): string {
  try {
    const parsed = new URL(url);
    const user = parsed.username === "" ? "" : `${decodeURIComponent(parsed.username)}@`;
    const host = parsed.host === "" ? (parsed.searchParams.get("host") ?? "localhost") : parsed.host;
    return `postgres://${user}${host}${parsed.pathname}`;
  } catch {
    return "postgres://(an unreadable URL)";
  }
}

/** A failure to connect, said plainly: which server, and what went wrong (the server's own words for a refusal). */
function unavailable(error: unknown, label: string): DatabaseUnavailableError {
  if (error instanceof DatabaseUnavailableError) return error;
  const code = (error as { code?: unknown }).code;
  const message = error instanceof Error ? error.message : String(error);
  const reason =
    code === "ECONNREFUSED"
      ? "connection refused (is PostgreSQL running there?)"
      : code === "ENOTFOUND" || code === "EAI_AGAIN"
        ? "the host name does not resolve"
        : code === "28P01" || code === "28000"
          ? `it refused the credentials: ${message}`
          : code === "3D000"
            ? `${message} (create it first: CREATE DATABASE …)`
            : message || String(code ?? "unknown error");
  return new DatabaseUnavailableError(`cannot use the database at ${label} (AI_SERVER_DATABASE_URL): ${reason}`, { cause: error });
}
