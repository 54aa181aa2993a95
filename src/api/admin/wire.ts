/**
 * The admin routes' answers as they go over the wire, with no import of their own: the server builds them
 * (keys.ts, audit.ts), the CLI prints them, and the dashboard (ui/) reads them through the same declarations.
 */

/** A key as the API and `ai-server keys list --json` show it: never its secret. */
export interface WireKey {
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
  /** Its last request, to the minute. */
  last_used_at: string | null;
  status: "active" | "expired" | "revoked";
  /** The key of AI_SERVER_ADMIN_KEY. */
  from_setting: boolean;
}

/** POST /api/keys's answer: the key itself, shown this once. */
export interface WireCreatedKey extends WireKey {
  key: string;
}

/** An entry as GET /api/audit answers it. */
export interface WireAuditEntry {
  id: number;
  /** When the request arrived (ISO 8601). */
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
  /** Only with AI_SERVER_AUDIT_CONTENT=1. */
  request_body: string | null;
  output: string[] | null;
  content_truncated: boolean;
}
