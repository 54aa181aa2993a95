/** The server's answers the Admin pages read (docs/api.md "Authentication" and "Audit log"). */

/** A key as GET /api/keys lists it (never its secret). */
export interface ApiKey {
  id: string;
  name: string;
  scope: "inference" | "admin";
  /** The models it may see and use; null = every model. */
  models: string[] | null;
  rpm: number | null;
  tpm: number | null;
  max_parallel: number | null;
  created_at: string;
  expires_at: string | null;
  revoked_at: string | null;
  last_used_at: string | null;
  status: "active" | "expired" | "revoked";
  /** The key of the AI_SERVER_ADMIN_KEY setting. */
  from_setting: boolean;
}

/** POST /api/keys's answer: the record and the key itself, shown this once. */
export interface CreatedKey extends ApiKey {
  key: string;
}

/** POST /api/keys's body. */
export interface NewKeyRequest {
  name: string;
  scope: "inference" | "admin";
  models?: string[];
  rpm?: number;
  tpm?: number;
  max_parallel?: number;
  /** A span from now ("30d") or a date ("2026-01-31"). */
  expires?: string;
}

/** One audited request, as GET /api/audit answers it. */
export interface AuditEntry {
  id: number;
  time: string;
  request_id: string;
  key_id: string | null;
  key_name: string | null;
  client_address: string;
  method: string;
  route: string;
  model: string | null;
  status: number;
  prompt_tokens: number;
  cached_tokens: number;
  completion_tokens: number;
  duration_ms: number;
  action: string | null;
  target: string | null;
  aborted: boolean;
  request_body: string | null;
  output: string[] | null;
  content_truncated: boolean;
}

export interface AuditPage {
  entries: AuditEntry[];
  /** The cursor of the next (older) page; null on the last one. */
  next_cursor: string | null;
}
