import type { Config } from "../config/schema.js";
import type { SqlDatabase } from "../store/database.js";
import { keysRequired } from "./authenticate.js";
import { KeyStore, type SettingKeyState } from "./key-store.js";

/** A line for the server's log. */
export interface KeyNotice {
  level: "info" | "warn";
  message: string;
}

const SETTING_KEY_NOTICES: Record<SettingKeyState, KeyNotice> = {
  created: { level: "info", message: "AI_SERVER_ADMIN_KEY: admin key created (stored hashed)" },
  replaced: { level: "info", message: "AI_SERVER_ADMIN_KEY changed: the earlier admin key is revoked, the new one stored (hashed)" },
  present: { level: "info", message: "AI_SERVER_ADMIN_KEY: admin key in place" },
  revoked: { level: "warn", message: "AI_SERVER_ADMIN_KEY names a key that was revoked; it stays revoked: set a new value" },
};

/**
 * The server's key store: AI_SERVER_ADMIN_KEY's key ensured, and whether requests need a key said on `notify` (never
 * a key itself).
 */
export async function openKeys(db: SqlDatabase, config: Config, notify: (notice: KeyNotice) => void): Promise<KeyStore> {
  const keys = await KeyStore.open(db);
  if (config.adminKey.trim() !== "") notify(SETTING_KEY_NOTICES[await keys.ensureSettingKey(config.adminKey.trim())]);
  notify(
    keysRequired(config, keys)
      ? { level: "info", message: "API keys: required on every route but /, /health and /ready" }
      : { level: "info", message: "API keys: none exists, the server is open to this machine (ai-server keys create --scope admin)" },
  );
  return keys;
}
