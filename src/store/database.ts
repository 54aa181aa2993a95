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
