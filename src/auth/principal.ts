/** Who is making a request, and what they may do: a key's identity and limits, or an anonymous client when open. */

/** What a key may reach: inference (generate, chat, embed, rerank, the /v1 routes, list, show) or everything. */
export type Scope = "inference" | "admin";

/** Per-key (or, when open, per-address) limits; absent = unlimited. */
export interface Limits {
  /** Requests per minute. */
  rpm?: number;
  /** Tokens (prompt + generated) per minute. */
  tpm?: number;
  /** Requests running at once. */
  maxParallel?: number;
}

export interface Principal {
  /** The key's id (not its secret), or null for an anonymous client of an open server. */
  keyId: string | null;
  /** The key's name, or "anonymous". */
  name: string;
  scope: Scope;
  /** Normalised model names this key may see and use; absent = all. */
  models?: readonly string[];
  limits: Limits;
  /** The client's address (the socket's peer). */
  clientAddress: string;
}
