/**
 * SQLite's schema migrations, applied in order; `user_version` records how many have run. Append only, and keep the
 * steps of postgres-migrations.ts in step: the same tables, the same step at the same index.
 */
export const SQLITE_MIGRATIONS: readonly string[] = [
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
  // Stored responses of OpenAI's Responses API (previous_response_id, GET/DELETE /v1/responses/{id}): `input` is the
  // whole conversation it answered (an earlier response's conversation and output included, references resolved),
  // `output` its output items, `response` the response object as answered. `response_items` finds an output item by
  // its id (`item_reference` inputs). Rows older than AI_SERVER_RESPONSES_RETENTION are pruned.
  `CREATE TABLE responses (
     id                   TEXT PRIMARY KEY,
     created_at           INTEGER NOT NULL,
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
     created_at  INTEGER NOT NULL,
     item        TEXT NOT NULL
   );
   CREATE INDEX response_items_by_response ON response_items (response_id);
   CREATE INDEX response_items_by_age ON response_items (created_at);`,
  // API keys (src/auth/key-store.ts): only a hash of each key is stored (sha256: the keys are 256 random bits, see
  // api-key.ts). `models` is a JSON array of normalised model names (NULL = every model); the limits are NULL when
  // unlimited; `from_setting` marks the key of AI_SERVER_ADMIN_KEY. Revoked keys stay, for the audit log's sake.
  `CREATE TABLE api_keys (
     id           TEXT PRIMARY KEY,
     name         TEXT NOT NULL,
     scope        TEXT NOT NULL,
     models       TEXT,
     rpm          INTEGER,
     tpm          INTEGER,
     max_parallel INTEGER,
     hash         BLOB NOT NULL,
     created_at   INTEGER NOT NULL,
     expires_at   INTEGER,
     revoked_at   INTEGER,
     last_used_at INTEGER,
     from_setting INTEGER NOT NULL DEFAULT 0
   )`,
  // The audit log (src/audit/audit-log.ts): one row per request that reached a route, written in batches. `time` is
  // when the request arrived (ms), `action`/`target` name an admin change (key.create, model.delete, …) that
  // succeeded; `request_body`/`output` are only filled with AI_SERVER_AUDIT_CONTENT=1. AUTOINCREMENT: ids never come
  // back after pruning, so a paging cursor (an id) stays valid. Rows older than AI_SERVER_AUDIT_RETENTION are pruned.
  `CREATE TABLE audit_log (
     id                INTEGER PRIMARY KEY AUTOINCREMENT,
     time              INTEGER NOT NULL,
     request_id        TEXT NOT NULL,
     key_id            TEXT,
     key_name          TEXT,
     client_address    TEXT NOT NULL,
     method            TEXT NOT NULL,
     route             TEXT NOT NULL,
     model             TEXT COLLATE NOCASE,
     status            INTEGER NOT NULL,
     prompt_tokens     INTEGER NOT NULL,
     cached_tokens     INTEGER NOT NULL,
     completion_tokens INTEGER NOT NULL,
     duration_ms       REAL NOT NULL,
     action            TEXT,
     target            TEXT,
     aborted           INTEGER NOT NULL,
     request_body      TEXT,
     output            TEXT,
     content_truncated INTEGER NOT NULL
   );
   CREATE INDEX audit_log_by_time ON audit_log (time);
   CREATE INDEX audit_log_by_key ON audit_log (key_id, id);
   CREATE INDEX audit_log_by_model ON audit_log (model, id);
   CREATE INDEX audit_log_by_action ON audit_log (action, id) WHERE action IS NOT NULL;`,
  // Stored responses belong to the API key that made them (NULL: made without a key); only that key, or an admin key
  // not limited to models, may read, continue or delete them.
  `ALTER TABLE responses ADD COLUMN owner TEXT;
   ALTER TABLE response_items ADD COLUMN owner TEXT;`,
  // The version of each table that replicas keep cached in memory (models, api_keys): every write to such a table
  // adds one to its row in the same transaction, so that a reader learns in one query whether its copy is current.
  `CREATE TABLE state_versions (
     name    TEXT PRIMARY KEY,
     version INTEGER NOT NULL
   );
   INSERT INTO state_versions (name, version) VALUES ('models', 0), ('api_keys', 0);`,
];
