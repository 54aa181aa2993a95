import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { DatabaseTarget } from "../../src/store/database.js";
import type { Dialect } from "../../src/store/sql/sql-database.js";
import { freshSuiteDatabase, PostgresServer, postgresSkipReason } from "./postgres-server.js";

/** The dialects a store test runs on, each with the reason it is skipped here (PostgreSQL not installed), if any. */
export const DIALECTS: ReadonlyArray<{ dialect: Dialect; skip: string | false }> = [
  { dialect: "sqlite", skip: false },
  { dialect: "postgres", skip: postgresSkipReason() ?? false },
];

/**
 * Fresh databases of either dialect for store tests: SQLite files in a temp directory, PostgreSQL databases on the
 * suite's server (AI_SERVER_TEST_DATABASE_URL) or on one started for this test file at the first need. Two
 * targets with the same `name` are the same database (two connections, as two processes or replicas would open).
 */
export class TestDatabases {
  private dir: Promise<string> | undefined;
  private server: Promise<PostgresServer> | undefined;
  private readonly named = new Map<string, DatabaseTarget>();
  private readonly drops: Array<() => Promise<void>> = [];

  /** A database of `dialect`: a new one, or the one already given under `name`. */
  async target(dialect: Dialect, name?: string): Promise<DatabaseTarget> {
    const key = name === undefined ? undefined : `${dialect}/${name}`;
    const known = key === undefined ? undefined : this.named.get(key);
    if (known) return known;
    const dir = await (this.dir ??= mkdtemp(path.join(os.tmpdir(), "ai-server-db-test-")));
    const file = path.join(dir, `${Math.random().toString(36).slice(2)}.db`);
    const target: DatabaseTarget = dialect === "sqlite" ? { file } : { file, url: await this.postgresDatabase() };
    if (key !== undefined) this.named.set(key, target);
    return target;
  }

  /** The PostgreSQL server's admin URL (starting it if this file has none yet). */
  async postgresUrl(): Promise<string> {
    const suite = process.env.AI_SERVER_TEST_DATABASE_URL;
    if (suite) return suite;
    return (await (this.server ??= PostgresServer.start())).url();
  }

  async close(): Promise<void> {
    await Promise.all(this.drops.map((drop) => drop().catch(() => undefined)));
    if (this.server) await (await this.server).close();
    if (this.dir) await rm(await this.dir, { recursive: true, force: true });
  }

  private async postgresDatabase(): Promise<string> {
    const { url, drop } = await freshSuiteDatabase(await this.postgresUrl());
    this.drops.push(drop);
    return url;
  }
}
