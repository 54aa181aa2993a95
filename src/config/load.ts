import { locateConfigFile, readConfigFile } from "./config-file.js";
import { settings, type Config, type SettingName } from "./schema.js";

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  ${problems.join("\n  ")}`);
    this.name = "ConfigError";
  }
}

/** Where a setting's value came from: its default, the config file, the environment, or the caller (`overrides`). */
export type SettingSource = "default" | "file" | "env" | "override";

/** The configuration, with where each value came from (`ai-server config` prints both). */
export interface ResolvedConfig {
  config: Config;
  sources: Readonly<Record<SettingName, SettingSource>>;
  /** The config file that was read, if any. */
  file?: string;
}

/**
 * Reads every setting from `env` (empty strings count as unset) and the config file (see src/config/config-file.ts:
 * AI_SERVER_CONFIG, else `config.toml` in AI_SERVER_HOME when it exists), validates all of them together, and either
 * returns a frozen Config or throws one ConfigError listing every problem. The environment wins over the file, and
 * `overrides` win over both.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: Partial<Record<SettingName, unknown>> = {}): Config {
  return resolveConfig(env, overrides).config;
}

/** loadConfig, also saying where each value came from and which config file was read. */
export function resolveConfig(env: NodeJS.ProcessEnv = process.env, overrides: Partial<Record<SettingName, unknown>> = {}): ResolvedConfig {
  const problems: string[] = [];
  const fromEnv = (name: SettingName): string | undefined => {
    const value = env[settings[name].env];
    return value === "" ? undefined : value;
  };
  // The file is found through AI_SERVER_HOME as the environment (or the caller) gives it, not as the file might.
  const home = typeof overrides.home === "string" ? overrides.home : (fromEnv("home") ?? settings.home.schema.parse(undefined));
  const located = locateConfigFile(env, home);
  const file = located ? readConfigFile(located.path) : { values: {}, problems: [] };
  problems.push(...file.problems);
  const values: Record<string, unknown> = {};
  const sources = {} as Record<SettingName, SettingSource>;
  for (const [key, setting] of Object.entries(settings)) {
    const name = key as SettingName;
    const source: SettingSource =
      name in overrides ? "override" : fromEnv(name) !== undefined ? "env" : file.values[name] !== undefined ? "file" : "default";
    const raw = source === "override" ? overrides[name] : source === "env" ? fromEnv(name) : source === "file" ? file.values[name] : undefined;
    sources[name] = source;
    const result = setting.schema.safeParse(raw);
    if (result.success) values[name] = result.data;
    else {
      const where = source === "file" ? ` (in ${located?.path})` : "";
      // A secret's value is never echoed, not even a wrong one (it may still be the right password in a wrong URL).
      const shown = "secret" in setting && setting.secret === true ? "(secret, not shown)" : JSON.stringify(raw);
      problems.push(`${setting.env}=${shown}${where}: ${result.error.issues.map((i) => i.message).join("; ")}`);
    }
  }
  problems.push(...crossChecks(values as Partial<Config>));
  if (problems.length > 0) throw new ConfigError(problems);
  return { config: Object.freeze(values) as Config, sources: Object.freeze(sources), ...(located && { file: located.path }) };
}

/** Rules between settings (among those valid on their own). */
function crossChecks(config: Partial<Config>): string[] {
  const problems: string[] = [];
  if (config.tlsCert !== undefined && config.tlsKey !== undefined && (config.tlsCert === "") !== (config.tlsKey === "")) {
    problems.push(`${settings.tlsCert.env} and ${settings.tlsKey.env} go together: set both (PEM files of the certificate and its key) or neither`);
  }
  return problems;
}

/** "127.0.0.1:11434", "0.0.0.0", "http://[::1]:8080" → listen address. Port defaults to 11434. */
export function parseListenAddress(value: string): { host: string; port: number } {
  const url = new URL(value.includes("://") ? value : `http://${value}`);
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1") || "127.0.0.1";
  const port = url.port === "" ? 11434 : Number(url.port);
  return { host, port };
}
