import { z } from "zod";
import type { SqlDatabase } from "./database.js";

/**
 * A response as stored: what it answered and what it answered with. The protocol's items and objects are opaque
 * JSON here (the Responses API adapter gives them their shape); the store only keeps them, finds them by id and
 * forgets them when they expire.
 */
export interface StoredResponse {
  id: string;
  createdAt: Date;
  /** The model as the request named it. */
  model: string;
  previousResponseId?: string;
  /** "completed", "incomplete", … */
  status: string;
  /** The request's settings (its input apart). */
  request: unknown;
  /** The whole conversation the response answered: earlier responses' input and output included, references resolved. */
  input: unknown[];
  /** Its output items. */
  output: unknown[];
  /** The response object as it was answered. */
  response: unknown;
  /** The API key id that made it; absent = made without a key. */
  owner?: string;
}

/**
 * Who asks for stored responses: a key (or none, on an open server) sees its own; `all` (an admin key not limited to
 * models) sees every one. Absent = every one (the store's own callers, tests).
 */
export interface ResponseViewer {
  keyId: string | null;
  all: boolean;
}

/** An output item that later requests may refer to by its id. */
export interface StoredItem {
  id: string;
  item: unknown;
}

/** How long responses are kept, and the clock (tests move it). */
export interface ResponseStoreOptions {
  /** Responses older than this are never served and are pruned; 0 = nothing is stored. */
  retentionMs: number;
  now?: () => number;
}

const rowSchema = z.object({
  id: z.string(),
  created_at: z.number(),
  model: z.string(),
  previous_response_id: z.string().nullable(),
  status: z.string(),
  request: z.string(),
  input: z.string(),
  output: z.string(),
  response: z.string(),
  owner: z.string().nullable(),
});

const itemRowSchema = z.object({ item: z.string(), owner: z.string().nullable() });

/**
 * Responses of OpenAI's Responses API in the database (the `responses` and `response_items` tables), so that
 * `previous_response_id`, `item_reference` inputs and GET/DELETE /v1/responses/{id} resolve after the response was
 * sent, after a restart, and on every replica sharing the database. A response older than the retention is never
 * served, even before `prune` removes it; a retention of 0 stores nothing.
 */
export class ResponseStore {
  private readonly retentionMs: number;
  private readonly now: () => number;

  constructor(private readonly db: SqlDatabase, options: ResponseStoreOptions) {
    this.retentionMs = Math.max(0, options.retentionMs);
    this.now = options.now ?? Date.now;
  }

  /** Whether responses are kept at all (a retention above 0). */
  get enabled(): boolean {
    return this.retentionMs > 0;
  }

  /** Stores a response and its referable items, in one transaction; does nothing when storing is off. */
  async save(response: StoredResponse, items: readonly StoredItem[] = []): Promise<void> {
    if (!this.enabled) return;
    const createdAt = response.createdAt.getTime();
    const owner = response.owner ?? null;
    await this.db.transaction(async (tx) => {
      await tx.run(
        `INSERT INTO responses (id, created_at, model, previous_response_id, status, request, input, output, response, owner)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET created_at = excluded.created_at, model = excluded.model,
           previous_response_id = excluded.previous_response_id, status = excluded.status, request = excluded.request,
           input = excluded.input, output = excluded.output, response = excluded.response, owner = excluded.owner`,
        [
          response.id,
          createdAt,
          response.model,
          response.previousResponseId ?? null,
          response.status,
          JSON.stringify(response.request),
          JSON.stringify(response.input),
          JSON.stringify(response.output),
          JSON.stringify(response.response),
          owner,
        ],
      );
      for (const { id, item } of items) {
        await tx.run(
          `INSERT INTO response_items (id, response_id, created_at, item, owner) VALUES (?, ?, ?, ?, ?)
           ON CONFLICT (id) DO UPDATE SET response_id = excluded.response_id, created_at = excluded.created_at,
             item = excluded.item, owner = excluded.owner`,
          [id, response.id, createdAt, JSON.stringify(item), owner],
        );
      }
    });
  }

  /** The response, unless it is unknown, deleted, expired, or not the viewer's. */
  async get(id: string, viewer?: ResponseViewer): Promise<StoredResponse | undefined> {
    if (!this.enabled) return undefined;
    const row = await this.db.get("SELECT * FROM responses WHERE id = ? AND created_at >= ?", [id, this.oldestKept()]);
    const response = row === undefined ? undefined : fromRow(row);
    return response && sees(viewer, response.owner ?? null) ? response : undefined;
  }

  /** An item of a stored response by its id, unless its response is gone or not the viewer's. */
  async item(id: string, viewer?: ResponseViewer): Promise<unknown> {
    if (!this.enabled) return undefined;
    const row = await this.db.get("SELECT item, owner FROM response_items WHERE id = ? AND created_at >= ?", [id, this.oldestKept()]);
    if (row === undefined) return undefined;
    const { item, owner } = itemRowSchema.parse(row);
    return sees(viewer, owner) ? (JSON.parse(item) as unknown) : undefined;
  }

  /** Deletes a response and its items; false when there was none (expired ones, or another key's, count as none). */
  async delete(id: string, viewer?: ResponseViewer): Promise<boolean> {
    if ((await this.get(id, viewer)) === undefined) return false;
    return this.db.transaction(async (tx) => {
      const removed = (await tx.run("DELETE FROM responses WHERE id = ?", [id])).changes > 0;
      await tx.run("DELETE FROM response_items WHERE response_id = ?", [id]);
      return removed;
    });
  }

  /** Removes every response (and item) older than the retention; returns how many responses went. */
  async prune(): Promise<number> {
    const cutoff = this.enabled ? this.oldestKept() : Number.MAX_SAFE_INTEGER;
    await this.db.run("DELETE FROM response_items WHERE created_at < ?", [cutoff]);
    return (await this.db.run("DELETE FROM responses WHERE created_at < ?", [cutoff])).changes;
  }

  /** The creation time (ms) of the oldest response still served. */
  private oldestKept(): number {
    return this.now() - this.retentionMs;
  }
}

function fromRow(value: unknown): StoredResponse {
  const row = rowSchema.parse(value);
  return {
    id: row.id,
    createdAt: new Date(row.created_at),
    model: row.model,
    ...(row.previous_response_id !== null && { previousResponseId: row.previous_response_id }),
    status: row.status,
    request: JSON.parse(row.request) as unknown,
    input: JSON.parse(row.input) as unknown[],
    output: JSON.parse(row.output) as unknown[],
    response: JSON.parse(row.response) as unknown,
    ...(row.owner !== null && { owner: row.owner }),
  };
}

/** Whether `viewer` may see a response made by `owner` (a key id, or null for none). */
function sees(viewer: ResponseViewer | undefined, owner: string | null): boolean {
  return viewer === undefined || viewer.all || viewer.keyId === owner;
}
