import Database from "better-sqlite3";
import { SQLITE_MIGRATIONS } from "./sqlite-migrations.js";
import type { SqlDatabase, SqlExecutor, SqlRow, SqlValue, TransactionOptions } from "./sql-database.js";

/**
 * The embedded database: one SQLite file under AI_SERVER_HOME (WAL, synchronous=FULL, a 5 s busy timeout), its
 * schema brought up to date at open (`user_version` counts the migrations applied). better-sqlite3 is synchronous:
 * each call runs at once and hands back a settled promise, so the default setup keeps its speed and durability.
 * Statements are prepared once per SQL text. While a transaction is open (its work may await), the database's own
 * methods wait for it to end, so nothing else lands inside it on the one connection.
 */
export class SqliteDatabase implements SqlDatabase {
  readonly dialect = "sqlite" as const;
  private readonly statements = new Map<string, Database.Statement<unknown[], unknown>>();
  private readonly dataVersion: Database.Statement<[], unknown>;
  private readonly inside: SqlExecutor;
  /** Settles when the transaction in progress ends; undefined when none is. */
  private gate: Promise<void> | undefined;

  private constructor(private readonly db: Database.Database, readonly label: string) {
    this.dataVersion = db.prepare("PRAGMA data_version").pluck();
    this.inside = {
      dialect: "sqlite",
      all: async (sql, params) => this.allNow(sql, params),
      get: async (sql, params) => this.getNow(sql, params),
      run: async (sql, params) => this.runNow(sql, params),
    };
  }

  /** Opens (creating if needed) the SQLite file and applies the migrations it has not had yet. */
  static open(file: string): SqliteDatabase {
    const db = new Database(file);
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = FULL");
    db.pragma("busy_timeout = 5000");
    const version = Number(db.pragma("user_version", { simple: true }));
    db.transaction(() => {
      for (let i = version; i < SQLITE_MIGRATIONS.length; i++) db.exec(SQLITE_MIGRATIONS[i] ?? "");
      db.pragma(`user_version = ${SQLITE_MIGRATIONS.length}`);
    })();
    return new SqliteDatabase(db, file);
  }

  async all(sql: string, params?: readonly SqlValue[]): Promise<SqlRow[]> {
    while (this.gate) await this.gate;
    return this.allNow(sql, params);
  }

  async get(sql: string, params?: readonly SqlValue[]): Promise<SqlRow | undefined> {
    while (this.gate) await this.gate;
    return this.getNow(sql, params);
  }

  async run(sql: string, params?: readonly SqlValue[]): Promise<{ changes: number }> {
    while (this.gate) await this.gate;
    return this.runNow(sql, params);
  }

  async transaction<T>(work: (tx: SqlExecutor) => Promise<T>, options: TransactionOptions = {}): Promise<T> {
    while (this.gate) await this.gate;
    let end = (): void => undefined;
    this.gate = new Promise((resolve) => (end = resolve));
    // A lazy commit appends to the WAL without an fsync; the next synced commit or checkpoint makes it durable.
    const level = options.lazy ? Number(this.db.pragma("synchronous", { simple: true })) : undefined;
    try {
      if (level !== undefined) this.db.pragma("synchronous = NORMAL");
      this.db.exec("BEGIN IMMEDIATE");
      try {
        const result = await work(this.inside);
        this.db.exec("COMMIT");
        return result;
      } catch (error) {
        if (this.db.inTransaction) this.db.exec("ROLLBACK");
        throw error;
      }
    } finally {
      if (level !== undefined) this.db.pragma(`synchronous = ${level}`);
      this.gate = undefined;
      end();
    }
  }

  changeCounter(): number {
    return Number(this.dataVersion.get());
  }

  async listen(): Promise<() => Promise<void>> {
    return async () => undefined;
  }

  async close(): Promise<void> {
    while (this.gate) await this.gate;
    this.db.close();
  }

  private allNow(sql: string, params: readonly SqlValue[] = []): SqlRow[] {
    return this.prepared(sql).all(...params) as SqlRow[];
  }

  private getNow(sql: string, params: readonly SqlValue[] = []): SqlRow | undefined {
    return this.prepared(sql).get(...params) as SqlRow | undefined;
  }

  private runNow(sql: string, params: readonly SqlValue[] = []): { changes: number } {
    return { changes: this.prepared(sql).run(...params).changes };
  }

  private prepared(sql: string): Database.Statement<unknown[], unknown> {
    let statement = this.statements.get(sql);
    if (statement === undefined) {
      statement = this.db.prepare(sql);
      this.statements.set(sql, statement);
    }
    return statement;
  }
}
