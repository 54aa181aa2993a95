import { mkdir } from "node:fs/promises";
import type { Config } from "../config/schema.js";
import { parseListenAddress } from "../config/load.js";
import { openDatabase } from "../store/database.js";
import { dataPaths } from "../store/open-store.js";
import { KeyStore } from "./key-store.js";

/** Whether a listen address reaches this machine only: `localhost`, 127.0.0.0/8, ::1 (and ::ffff:127.x). */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[(.*)\]$/, "$1");
  return h === "localhost" || h === "::1" || /^(::ffff:)?127\.\d+\.\d+\.\d+$/.test(h);
}

/**
 * Why the server must not start, or undefined: it would listen on a non-loopback address with no usable API key
 * and without AI_SERVER_ALLOW_OPEN=1, where anyone who reaches it could use and change it. The message says what
 * to do. Reads the keys from the database (under AI_SERVER_HOME, or AI_SERVER_DATABASE_URL's).
 */
export async function openAddressRefusal(config: Config): Promise<string | undefined> {
  const { host, port } = parseListenAddress(config.host);
  if (isLoopbackHost(host) || config.allowOpen || config.adminKey !== "") return undefined;
  await mkdir(config.home, { recursive: true });
  const db = await openDatabase({ file: dataPaths(config.home).database, url: config.databaseUrl });
  try {
    if ((await KeyStore.open(db)).hasUsableKey()) return undefined;
  } finally {
    await db.close();
  }
  return [
    `ai-server: refusing to start: AI_SERVER_HOST=${config.host} listens on ${host}:${port}, beyond this machine, and no API key exists,`,
    "so anyone who can reach it could use and change this server. Do one of these:",
    "  - create an admin key (it is printed once):  ai-server keys create --name admin --scope admin",
    "  - or set AI_SERVER_ADMIN_KEY to a secret of at least 32 characters (e.g. openssl rand -base64 32)",
    "  - or listen on this machine only:             AI_SERVER_HOST=127.0.0.1:11434",
    "  - or run open on purpose:                      AI_SERVER_ALLOW_OPEN=1",
  ].join("\n");
}

/** `serve`'s safe default: says why and exits with status 1 when openAddressRefusal finds a reason. */
export async function refuseOpenOnPublicAddress(config: Config): Promise<void> {
  const refusal = await openAddressRefusal(config);
  if (refusal === undefined) return;
  process.stderr.write(`${refusal}\n`);
  process.exit(1);
}
