import type { SqlDatabase, SqlExecutor } from "./sql-database.js";

/**
 * Tables that stores keep in memory because every request reads them (names → models, API keys), each with a row
 * in `state_versions` that every write to the table raises in the same transaction.
 */
export type SharedTable = "models" | "api_keys";

/** The channel on which PostgreSQL announces a write (its payload: the table), so that other replicas refresh. */
export const STATE_CHANNEL = "ai_server_state";

/**
 * A table's rows as a store keeps them in memory, with the version they were read at. Reads are synchronous
 * (`value`); `SharedState.refresh` reads them again when their version moved, and `write` after each write.
 */
export class TableCache<T> {
  private loaded: { version: number; value: T } | undefined;

  constructor(
    private readonly db: SqlDatabase,
    readonly table: SharedTable,
    private readonly read: (db: SqlExecutor) => Promise<T>,
  ) {
    SharedState.of(db).add(this);
  }

  /** The rows as last read. Throws before the first `load`. */
  get value(): T {
    if (this.loaded === undefined) throw new Error(`the ${this.table} table has not been read yet`);
    return this.loaded.value;
  }

  /**
   * Reads the table: its version first, then its rows, so that the rows are at least as new as the version kept
   * (a write committed in between is read again at the next refresh, never missed).
   */
  async load(): Promise<T> {
    const version = await readVersion(this.db, this.table);
    const value = await this.read(this.db);
    // A slower read that started earlier must not replace a newer one.
    if (this.loaded === undefined || version >= this.loaded.version) this.loaded = { version, value };
    return this.loaded.value;
  }

  /** Reads the table again when its version is not the one kept. */
  async refresh(versions: ReadonlyMap<string, number>): Promise<void> {
    if (this.loaded === undefined || versions.get(this.table) !== this.loaded.version) await this.load();
  }

  /**
   * Runs `work` in a transaction that also raises the table's version (and, on PostgreSQL, tells the other replicas
   * on commit), then reads the table again: this process sees its own write at once, the others at their next
   * request or notification.
   */
  async write<R>(work: (tx: SqlExecutor) => Promise<R>): Promise<R> {
    const result = await this.db.transaction(async (tx) => {
      const done = await work(tx);
      await tx.run("UPDATE state_versions SET version = version + 1 WHERE name = ?", [this.table]);
      if (tx.dialect === "postgres") await tx.get("SELECT pg_notify(?, ?)", [STATE_CHANNEL, this.table]);
      return done;
    });
    SharedState.of(this.db).wrote();
    await this.load();
    return result;
  }
}

/**
 * The cached tables of one database, and the one refresh that keeps them current: it reads every table's version
 * (one query; on SQLite none at all unless data_version says another connection committed) and reloads the tables
 * whose version moved. The server awaits it before each request (server/fresh-state.ts), so that a change committed
 * by any replica before a request arrives is seen by that request; on PostgreSQL, notifications also run it between
 * requests. Concurrent refreshes are coalesced: a caller joins the next one to start, never one already under way
 * (which might have read the versions before the caller's change).
 */
export class SharedState {
  private static readonly byDatabase = new WeakMap<SqlDatabase, SharedState>();
  private readonly caches: Array<TableCache<unknown>> = [];
  /** The database's change counter when the versions were last read. */
  private counter: number | undefined;
  /** Writes through this database's caches, and how many the last refresh had seen. */
  private writes = 0;
  private seenWrites = -1;
  private running: Promise<void> | undefined;
  private next: Promise<void> | undefined;

  private constructor(private readonly db: SqlDatabase) {}

  /** The shared state of a database (one per database object). */
  static of(db: SqlDatabase): SharedState {
    let state = SharedState.byDatabase.get(db);
    if (state === undefined) {
      state = new SharedState(db);
      SharedState.byDatabase.set(db, state);
    }
    return state;
  }

  add(cache: TableCache<unknown>): void {
    this.caches.push(cache);
  }

  /** Counts a write through one of the caches (another cache of the same table may need to read it). */
  wrote(): void {
    this.writes++;
  }

  /** Brings every cached table up to date with the database; rejects when the database cannot be read. */
  refresh(): Promise<void> {
    if (this.running === undefined) {
      this.running = this.refreshNow().finally(() => (this.running = undefined));
      return this.running;
    }
    this.next ??= this.running
      .catch(() => undefined)
      .then(() => {
        this.next = undefined;
        return this.refresh();
      });
    return this.next;
  }

  /**
   * Refreshes whenever another replica announces a write (PostgreSQL), so that what runs between requests (the
   * scheduler's checks) sees it soon too. Returns the function that stops listening.
   */
  listen(warn: (message: string) => void): Promise<() => Promise<void>> {
    return this.db.listen(STATE_CHANNEL, () => {
      this.refresh().catch((error: unknown) => warn(`refreshing the shared state failed: ${error instanceof Error ? error.message : String(error)}`));
    });
  }

  private async refreshNow(): Promise<void> {
    const counter = this.db.changeCounter();
    const writes = this.writes;
    if (counter !== undefined && counter === this.counter && writes === this.seenWrites) return;
    const rows = await this.db.all("SELECT name, version FROM state_versions");
    const versions = new Map(rows.map((row) => [String(row.name), Number(row.version)]));
    await Promise.all(this.caches.map((cache) => cache.refresh(versions)));
    this.counter = counter;
    this.seenWrites = writes;
  }
}

async function readVersion(db: SqlExecutor, table: SharedTable): Promise<number> {
  const row = await db.get("SELECT version FROM state_versions WHERE name = ?", [table]);
  return Number(row?.version ?? 0);
}
