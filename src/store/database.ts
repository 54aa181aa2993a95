import { PostgresDatabase } from "./sql/postgres-database.js";
import type { SqlDatabase } from "./sql/sql-database.js";
import { SqliteDatabase } from "./sql/sqlite-database.js";

export type { SqlDatabase, SqlExecutor, SqlRow, SqlValue, Dialect } from "./sql/sql-database.js";

/** Where the server's state lives. */
export interface DatabaseTarget {
  /** The SQLite file, used when no URL is given. */
  file: string;
  /** AI_SERVER_DATABASE_URL: a postgres:// or postgresql:// URL; empty or absent = the SQLite file. */
  url?: string;
  /** Told of a PostgreSQL connection lost in the background (the pool replaces it by itself). */
  warn?: (message: string) => void;
}

/**
 * Opens the database that holds everything but the model bytes (names → manifests, jobs, quantizations, API keys,
 * the audit log, stored responses), bringing its schema up to date: PostgreSQL when a URL is given (shared by the
 * replicas given the same URL), else the SQLite file (one machine; no other service). Throws
 * DatabaseUnavailableError when PostgreSQL cannot be used.
 */
export async function openDatabase(target: DatabaseTarget): Promise<SqlDatabase> {
  if (target.url !== undefined && target.url !== "") return PostgresDatabase.open(target.url, target.warn ? { warn: target.warn } : {});
  return SqliteDatabase.open(target.file);
}
