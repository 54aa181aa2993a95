import { CONFIG_FILE_ENV, DEFAULT_CONFIG_FILE } from "../config/config-file.js";
import { ConfigError, resolveConfig, type ResolvedConfig, type SettingSource } from "../config/load.js";
import { settings, type SettingName } from "../config/schema.js";

/** How a secret that is set is shown. */
export const MASK = "********";

/** One setting as `ai-server config` shows it. */
export interface SettingRow {
  /** Its environment variable (also its key in the config file). */
  env: string;
  /** Its effective value as text that the setting would accept again; MASK for a secret that is set. */
  value: string;
  source: SettingSource;
}

/** Every setting's effective value and where it came from, in the schema's order; secrets masked. */
export function settingRows({ config, sources }: ResolvedConfig): SettingRow[] {
  return Object.entries(settings).map(([key, setting]) => {
    const name = key as SettingName;
    const text = settingText(name, config[name]);
    const secret = "secret" in setting && setting.secret;
    return { env: setting.env, value: secret && text !== NONE ? MASK : text, source: sources[name] };
  });
}

const NONE = "(none)";

/**
 * A parsed value as a setting's text: durations (settings named …Ms) as "30s", "5m", "720h" and sizes as "1GiB" when
 * the setting reads them back so; lists comma separated; aliases as alias=model pairs; nothing as "(none)".
 */
export function settingText(name: SettingName, value: unknown): string {
  if (value === undefined || value === "") return NONE;
  if (typeof value === "number") {
    const readable = [...(name.endsWith("Ms") ? [durationText(value)] : []), sizeText(value)];
    return readable.find((text) => readsBackAs(name, text, value)) ?? String(value);
  }
  if (Array.isArray(value)) return value.length === 0 ? NONE : value.join(",");
  if (typeof value === "object" && value !== null) {
    const pairs = Object.entries(value).map(([k, v]) => `${k}=${String(v)}`);
    return pairs.length === 0 ? NONE : pairs.join(",");
  }
  return String(value);
}

/** Whether the setting parses `text` to `value` (a unit the setting does not take would not). */
function readsBackAs(name: SettingName, text: string, value: number): boolean {
  const result = settings[name].schema.safeParse(text);
  return result.success && result.data === value;
}

function durationText(ms: number): string {
  if (ms < 0) return "-1";
  if (ms === 0) return "0";
  for (const [unit, size] of [["h", 3_600_000], ["m", 60_000], ["s", 1000]] as const) if (ms % size === 0) return `${ms / size}${unit}`;
  return `${ms}ms`;
}

function sizeText(bytes: number): string {
  for (const [unit, size] of [["TiB", 2 ** 40], ["GiB", 2 ** 30], ["MiB", 2 ** 20], ["KiB", 2 ** 10]] as const) {
    if (bytes >= size && bytes % size === 0) return `${bytes / size}${unit}`;
  }
  return String(bytes);
}

/**
 * `ai-server config`: prints the config file read (if any) and every setting's effective value with its source
 * (default, file or env), secrets masked; `--json` prints the same as JSON. An invalid configuration prints every
 * problem and exits with status 2, as `serve` does.
 */
export async function configCommand(options: { json?: boolean }): Promise<void> {
  let resolved: ResolvedConfig;
  try {
    resolved = resolveConfig();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`${error.message}\n`);
    process.exitCode = 2;
    return;
  }
  const rows = settingRows(resolved);
  if (options.json) {
    process.stdout.write(`${JSON.stringify({ file: resolved.file ?? null, settings: rows }, null, 2)}\n`);
    return;
  }
  const file = resolved.file ?? `(none: set ${CONFIG_FILE_ENV}, or create ${DEFAULT_CONFIG_FILE} in AI_SERVER_HOME)`;
  const width = Math.max(...rows.map((row) => row.env.length)) + 2;
  const lines = [`config file: ${file}`, "", `${"SETTING".padEnd(width)}${"SOURCE".padEnd(9)}VALUE`];
  for (const row of rows) lines.push(`${row.env.padEnd(width)}${row.source.padEnd(9)}${row.value}`);
  process.stdout.write(`${lines.join("\n")}\n`);
}
