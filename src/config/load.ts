import { settings, type Config, type SettingName } from "./schema.js";

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  ${problems.join("\n  ")}`);
    this.name = "ConfigError";
  }
}

/**
 * Reads every setting from `env` (empty strings count as unset), validates all of them, and either returns a
 * frozen Config or throws one ConfigError listing every problem. `overrides` win over the environment.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: Partial<Record<SettingName, unknown>> = {}): Config {
  const problems: string[] = [];
  const values: Record<string, unknown> = {};
  for (const [name, setting] of Object.entries(settings)) {
    const raw = name in overrides ? overrides[name as SettingName] : env[setting.env] === "" ? undefined : env[setting.env];
    const result = setting.schema.safeParse(raw);
    if (result.success) values[name] = result.data;
    else problems.push(`${setting.env}=${JSON.stringify(raw)}: ${result.error.issues.map((i) => i.message).join("; ")}`);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze(values) as Config;
}

/** "127.0.0.1:11434", "0.0.0.0", "http://[::1]:8080" → listen address. Port defaults to 11434. */
export function parseListenAddress(value: string): { host: string; port: number } {
  const url = new URL(value.includes("://") ? value : `http://${value}`);
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1") || "127.0.0.1";
  const port = url.port === "" ? 11434 : Number(url.port);
  return { host, port };
}
