import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { settings, type SettingName } from "./schema.js";
import { parse as parseToml } from "smol-toml";

/** The environment variable naming the config file. */
export const CONFIG_FILE_ENV = "AI_SERVER_CONFIG";

/** The config file's name in AI_SERVER_HOME, read when AI_SERVER_CONFIG names none. */
export const DEFAULT_CONFIG_FILE = "config.toml";

/** What a config file says: each setting it sets, as the string the environment would give. */
export interface ConfigFileValues {
  values: Partial<Record<SettingName, string>>;
  /** Everything wrong with the file: it cannot be read or parsed, unknown keys, keys given twice, values of no usable type. */
  problems: string[];
}

/**
 * The config file to read: the one AI_SERVER_CONFIG names (it must exist), else `config.toml` in `home` when there
 * is one, else none.
 */
export function locateConfigFile(env: NodeJS.ProcessEnv, home: string): { path: string; named: boolean } | undefined {
  const named = env[CONFIG_FILE_ENV];
  if (named !== undefined && named !== "") return { path: path.resolve(named), named: true };
  const inHome = path.join(home, DEFAULT_CONFIG_FILE);
  return existsSync(inHome) ? { path: inHome, named: false } : undefined;
}

/**
 * The key a config file names a setting by: its environment variable (`AI_SERVER_KEEP_ALIVE`, `HF_TOKEN`) or the
 * same in lower case without the `AI_SERVER_` prefix (`keep_alive`, `hf_token`).
 */
export function configFileKeys(env: string): [string, string] {
  return [env, env.replace(/^AI_SERVER_/, "").toLowerCase()];
}

/**
 * Reads a config file: JSON when its name ends in `.json`, else TOML. It is flat, one key per setting (see
 * configFileKeys). A value is a string, a number, a boolean, or an array of those (joined with commas, for the
 * list settings: `preload = ["a", "b"]`); each becomes the string the environment variable would hold, so that the
 * file and the environment are validated by the same rules.
 */
export function readConfigFile(file: string): ConfigFileValues {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    return { values: {}, problems: [`${file}: cannot be read: ${messageOf(error)}`] };
  }
  const json = file.toLowerCase().endsWith(".json");
  const parse = json ? (source: string): unknown => JSON.parse(source) : (source: string): unknown => parseToml(source);
  let parsed: unknown;
  try {
    parsed = parse(text);
  } catch (error) {
    return { values: {}, problems: [`${file}: not valid ${json ? "JSON" : "TOML"}: ${messageOf(error)}`] };
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return { values: {}, problems: [`${file}: expected an object of settings`] };
  const byKey = new Map<string, SettingName>();
  for (const [name, setting] of Object.entries(settings)) for (const key of configFileKeys(setting.env)) byKey.set(key, name as SettingName);
  const values: Partial<Record<SettingName, string>> = {};
  const givenAs = new Map<SettingName, string>();
  const problems: string[] = [];
  for (const [key, value] of Object.entries(parsed)) {
    const name = byKey.get(key);
    if (name === undefined) {
      problems.push(`${file}: unknown setting "${key}" (keys are the settings' environment variables, e.g. AI_SERVER_HOST or host)`);
      continue;
    }
    const earlier = givenAs.get(name);
    if (earlier !== undefined) {
      problems.push(`${file}: "${key}" and "${earlier}" are the same setting`);
      continue;
    }
    givenAs.set(name, key);
    const text = asSettingText(value);
    if (text === undefined) problems.push(`${file}: ${key}: expected a string, a number, a boolean or an array of them`);
    else values[name] = text;
  }
  return { values, problems };
}

/** A file value as the environment variable's text: numbers and booleans spelled out, arrays joined with commas. */
function asSettingText(value: unknown): string | undefined {
  if (Array.isArray(value)) {
    const items = value.map(asScalarText);
    return items.every((item) => item !== undefined) ? items.join(",") : undefined;
  }
  return asScalarText(value);
}

function asScalarText(value: unknown): string | undefined {
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "bigint") return String(value);
  if (typeof value === "boolean") return value ? "true" : "false";
  return undefined;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
