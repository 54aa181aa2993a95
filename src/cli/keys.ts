import { mkdir } from "node:fs/promises";
import { InvalidArgumentError } from "commander";
import { toNewKey, toWireKey, newKeySchema, type WireCreatedKey, type WireKey } from "../api/admin/keys.js";
import { parseBody } from "../api/validation.js";
import { KeyStore } from "../auth/key-store.js";
import { loadConfig } from "../config/load.js";
import { openDatabase } from "../store/database.js";
import { dataPaths } from "../store/open-store.js";
import { cliApiKey } from "./api-key.js";
import { answers, serverUrl } from "./client.js";
import { table } from "./format.js";
import { ApiError, ServerApi } from "./http-client.js";

/**
 * `ai-server keys create|list|revoke`: through the running server's admin routes (with AI_SERVER_API_KEY or
 * AI_SERVER_ADMIN_KEY when it requires a key), or on the database (under AI_SERVER_HOME, or AI_SERVER_DATABASE_URL's)
 * when no server runs, with the same checks.
 */

/** `keys create`'s options as commander hands them over. */
export interface CreateKeyOptions {
  name: string;
  scope: string;
  models?: string;
  rpm?: number;
  tpm?: number;
  maxParallel?: number;
  expires?: string;
  json?: boolean;
}

/** Where the keys are: the server's API, or the store. */
interface KeysBackend {
  /** "on the server at http://…" or "in the local store". */
  readonly where: string;
  create(body: Record<string, unknown>): Promise<WireCreatedKey>;
  list(): Promise<WireKey[]>;
  revoke(id: string): Promise<WireKey>;
  close(): Promise<void>;
}

/** `keys create`: prints the key alone on stdout (once: only its hash is kept), what it is on stderr. */
export async function createKeyCommand(options: CreateKeyOptions): Promise<void> {
  const body = {
    name: options.name,
    scope: options.scope,
    ...(options.models !== undefined && { models: options.models.split(",").map((m) => m.trim()).filter(Boolean) }),
    ...(options.rpm !== undefined && { rpm: options.rpm }),
    ...(options.tpm !== undefined && { tpm: options.tpm }),
    ...(options.maxParallel !== undefined && { max_parallel: options.maxParallel }),
    ...(options.expires !== undefined && { expires: options.expires }),
  };
  await withBackend(async (keys) => {
    const created = await keys.create(body);
    if (options.json) {
      process.stdout.write(`${JSON.stringify(created, null, 2)}\n`);
      return;
    }
    process.stdout.write(`${created.key}\n`);
    const scope = created.models === null ? `scope ${created.scope}` : `scope ${created.scope}, models ${created.models.join(", ")}`;
    const expiry = created.expires_at === null ? "" : `, expires ${created.expires_at}`;
    process.stderr.write(`created key "${created.name}" (id ${created.id}, ${scope}${expiry}) ${keys.where}\nThe key is shown this once: store it now.\n`);
  });
}

/** `keys list [--json]`: every key with its scope, models, limits and state; never a secret. */
export async function listKeysCommand(options: { json?: boolean }): Promise<void> {
  await withBackend(async (keys) => {
    const listed = await keys.list();
    process.stdout.write(options.json ? `${JSON.stringify(listed, null, 2)}\n` : keysTable(listed));
  });
}

/** `keys revoke ID`: the key stops working at once. */
export async function revokeKeyCommand(id: string): Promise<void> {
  await withBackend(async (keys) => {
    const revoked = await keys.revoke(id);
    console.log(`revoked key ${revoked.id} ("${revoked.name}")`);
  });
}

/** commander's parser for the limits: a whole number of at least 1. */
export function positiveInteger(value: string): number {
  const number = Number(value);
  if (!Number.isInteger(number) || number < 1) throw new InvalidArgumentError("expected a whole number of at least 1");
  return number;
}

/** ID, NAME, SCOPE, MODELS, LIMITS, EXPIRES, LAST USED, STATUS. */
export function keysTable(keys: WireKey[]): string {
  const rows = keys.map((key) => [
    key.id,
    key.name,
    key.scope,
    key.models === null ? "all" : key.models.join(","),
    limitsText(key),
    key.expires_at?.slice(0, 16).replace("T", " ") ?? "never",
    key.last_used_at?.slice(0, 16).replace("T", " ") ?? "-",
    key.status,
  ]);
  return table(["ID", "NAME", "SCOPE", "MODELS", "LIMITS", "EXPIRES", "LAST USED", "STATUS"], rows);
}

function limitsText(key: WireKey): string {
  const limits = [key.rpm !== null && `${key.rpm} rpm`, key.tpm !== null && `${key.tpm} tpm`, key.max_parallel !== null && `${key.max_parallel} parallel`];
  return limits.filter(Boolean).join(", ") || "-";
}

async function withBackend(work: (keys: KeysBackend) => Promise<void>): Promise<void> {
  const keys = await keysBackend();
  try {
    await work(keys);
  } finally {
    await keys.close();
  }
}

async function keysBackend(): Promise<KeysBackend> {
  const config = loadConfig();
  const base = serverUrl(config);
  if (await answers(base)) return serverBackend(new ServerApi(base, cliApiKey(config)));
  await mkdir(config.home, { recursive: true });
  const db = await openDatabase({ file: dataPaths(config.home).database, url: config.databaseUrl });
  try {
    return localBackend(await KeyStore.open(db), () => db.close());
  } catch (error) {
    await db.close();
    throw error;
  }
}

function serverBackend(api: ServerApi): KeysBackend {
  const call = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    try {
      return await api.json<T>(method, path, body);
    } catch (error) {
      if (error instanceof ApiError && (error.status === 401 || error.status === 403)) {
        throw new Error(`the server at ${api.base} wants an admin key for this (${error.message}): set AI_SERVER_API_KEY to one`);
      }
      throw error;
    }
  };
  return {
    where: `on the server at ${api.base}`,
    create: (body) => call<WireCreatedKey>("POST", "/api/keys", body),
    list: async () => (await call<{ keys: WireKey[] }>("GET", "/api/keys")).keys,
    revoke: (id) => call<WireKey>("DELETE", `/api/keys/${encodeURIComponent(id)}`),
    close: async () => undefined,
  };
}

function localBackend(store: KeyStore, close: () => Promise<void>): KeysBackend {
  return {
    where: "in the local store (no server is running)",
    create: async (body) => {
      const now = new Date();
      const { key, record } = await store.create(toNewKey(parseBody(newKeySchema, body), now));
      return { ...toWireKey(record, now), key };
    },
    list: async () => store.list().map((record) => toWireKey(record, new Date())),
    revoke: async (id) => toWireKey(await store.revoke(id), new Date()),
    close,
  };
}
