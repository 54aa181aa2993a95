/**
 * PostgreSQL's schema migrations: the steps of sqlite-migrations.ts, one for one, in the same order (read the
 * comments there for what each table holds); the `schema_version` table counts how many have run. Append only.
 *
 * Where the dialects differ: times (milliseconds) and counts are BIGINT (SQLite's INTEGER is 64-bit, PostgreSQL's
 * is not); BLOB is BYTEA; REAL is DOUBLE PRECISION; AUTOINCREMENT is an identity column (ids never come back either);
 * SQLite's case-insensitive NOCASE columns are compared through lower() here, with a unique index on lower(name) so
 * that two models never differ only by case.
 */
export const POSTGRES_MIGRATIONS: readonly string[] = [
  `CREATE TABLE models (
     name        TEXT PRIMARY KEY,
     digest      TEXT NOT NULL,
     manifest    TEXT NOT NULL,
     modified_at BIGINT NOT NULL
   );
   CREATE UNIQUE INDEX models_by_lower_name ON models (lower(name));`,
  `CREATE TABLE jobs (
     id          TEXT PRIMARY KEY,
     type        TEXT NOT NULL,
     model       TEXT NOT NULL,
     state       TEXT NOT NULL,
     request     TEXT NOT NULL,
     plan        TEXT,
     progress    TEXT NOT NULL DEFAULT '{}',
     error       TEXT,
     created_at  BIGINT NOT NULL,
     updated_at  BIGINT NOT NULL,
     started_at  BIGINT,
     finished_at BIGINT,
     owner       TEXT,
     lease_until BIGINT
   );
   CREATE INDEX jobs_by_state ON jobs (state, created_at);`,
  `CREATE TABLE quantizations (
     source_digest TEXT NOT NULL,
     type          TEXT NOT NULL,
     result_digest TEXT NOT NULL,
     created_at    BIGINT NOT NULL,
     PRIMARY KEY (source_digest, type)
   )`,
  `CREATE TABLE responses (
     id                   TEXT PRIMARY KEY,
     created_at           BIGINT NOT NULL,
     model                TEXT NOT NULL,
     previous_response_id TEXT,
     status               TEXT NOT NULL,
     request              TEXT NOT NULL,
     input                TEXT NOT NULL,
     output               TEXT NOT NULL,
     response             TEXT NOT NULL
   );
   CREATE INDEX responses_by_age ON responses (created_at);
   CREATE TABLE response_items (
     id          TEXT PRIMARY KEY,
     response_id TEXT NOT NULL,
     created_at  BIGINT NOT NULL,
     item        TEXT NOT NULL
   );
   CREATE INDEX response_items_by_response ON response_items (response_id);
   CREATE INDEX response_items_by_age ON response_items (created_at);`,
  `CREATE TABLE api_keys (
     id           TEXT PRIMARY KEY,
     name         TEXT NOT NULL,
     scope        TEXT NOT NULL,
     models       TEXT,
     rpm          BIGINT,
     tpm          BIGINT,
     max_parallel BIGINT,
     hash         BYTEA NOT NULL,
     created_at   BIGINT NOT NULL,
     expires_at   BIGINT,
     revoked_at   BIGINT,
     last_used_at BIGINT,
     from_setting INTEGER NOT NULL DEFAULT 0
   )`,
  `CREATE TABLE audit_log (
     id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
     time              BIGINT NOT NULL,
     request_id        TEXT NOT NULL,
     key_id            TEXT,
     key_name          TEXT,
     client_address    TEXT NOT NULL,
     method            TEXT NOT NULL,
     route             TEXT NOT NULL,
     model             TEXT,
     status            INTEGER NOT NULL,
     prompt_tokens     BIGINT NOT NULL,
     cached_tokens     BIGINT NOT NULL,
     completion_tokens BIGINT NOT NULL,
     duration_ms       DOUBLE PRECISION NOT NULL,
     action            TEXT,
     target            TEXT,
     aborted           INTEGER NOT NULL,
     request_body      TEXT,
     output            TEXT,
     content_truncated INTEGER NOT NULL
   );
   CREATE INDEX audit_log_by_time ON audit_log (time);
   CREATE INDEX audit_log_by_key ON audit_log (key_id, id);
   CREATE INDEX audit_log_by_model ON audit_log (lower(model), id);
   CREATE INDEX audit_log_by_action ON audit_log (action, id) WHERE action IS NOT NULL;`,
  `ALTER TABLE responses ADD COLUMN owner TEXT;
   ALTER TABLE response_items ADD COLUMN owner TEXT;`,
  `CREATE TABLE state_versions (
     name    TEXT PRIMARY KEY,
     version BIGINT NOT NULL
   );
   INSERT INTO state_versions (name, version) VALUES ('models', 0), ('api_keys', 0);`,
];
