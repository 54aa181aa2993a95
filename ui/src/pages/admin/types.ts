/** The server's answers the Admin pages read (docs/api.md "Authentication" and "Audit log"). */

import type { WireAuditEntry, WireCreatedKey, WireKey } from "../../../../src/api/admin/wire.js";

/** A key as GET /api/keys lists it (never its secret): the server's own declaration. */
export type ApiKey = WireKey;

/** POST /api/keys's answer: the record and the key itself, shown this once. */
export type CreatedKey = WireCreatedKey;

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
export type AuditEntry = WireAuditEntry;

export interface AuditPage {
  entries: AuditEntry[];
  /** The cursor of the next (older) page; null on the last one. */
  next_cursor: string | null;
}
