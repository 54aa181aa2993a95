import Database from "better-sqlite3";

export type Db = Database.Database;

/** Schema migrations, applied in order; `user_version` records how many have run. Append only. */
const MIGRATIONS: string[] = [
  `CREATE TABLE models (
     name        TEXT PRIMARY KEY COLLATE NOCASE,
     digest      TEXT NOT NULL,
     manifest    TEXT NOT NULL,
     modified_at INTEGER NOT NULL
   )`,
  // Background jobs (pulls). `request` is what was asked, `plan` what it resolved to (null until resolved),
  // `progress` the per-file bytes, so that a restart resumes where the job stood. `owner` and `lease_until` are the
  // claim of the process running it (a replica, later): a job whose lease lapsed may be taken over.
  `CREATE TABLE jobs (
     id          TEXT PRIMARY KEY,
     type        TEXT NOT NULL,
     model       TEXT NOT NULL COLLATE NOCASE,
     state       TEXT NOT NULL,
     request     TEXT NOT NULL,
     plan        TEXT,
     progress    TEXT NOT NULL DEFAULT '{}',
     error       TEXT,
     created_at  INTEGER NOT NULL,
     updated_at  INTEGER NOT NULL,
     started_at  INTEGER,
     finished_at INTEGER,
     owner       TEXT,
     lease_until INTEGER
   );
   CREATE INDEX jobs_by_state ON jobs (state, created_at);`,
  // Local quantizations already made: the same source weights and type are never quantized twice.
  `CREATE TABLE quantizations (
     source_digest TEXT NOT NULL,
     type          TEXT NOT NULL,
     result_digest TEXT NOT NULL,
     created_at    INTEGER NOT NULL,
     PRIMARY KEY (source_digest, type)
   )`,
];

/** Opens (creating if needed) the server's SQLite database and brings its schema up to date. */
export function openDatabase(file: string): Db {
  const db = new Database(file);
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = FULL");
  db.pragma("busy_timeout = 5000");
  const version = Number(db.pragma("user_version", { simple: true }));
  db.transaction(() => {
    for (let i = version; i < MIGRATIONS.length; i++) db.exec(MIGRATIONS[i] ?? "");
    db.pragma(`user_version = ${MIGRATIONS.length}`);
  })();
  return db;
}
