import type { Config } from "../config/schema.js";

/**
 * The API key the CLI sends to a running server that requires one: AI_SERVER_API_KEY, else AI_SERVER_ADMIN_KEY (the
 * server's own admin key, on the machine that runs it); undefined when neither is set.
 */
export function cliApiKey(config: Pick<Config, "apiKey" | "adminKey">): string | undefined {
  const key = config.apiKey.trim() || config.adminKey.trim();
  return key === "" ? undefined : key;
}

/** The headers carrying `key`, as OpenAI's clients send it. */
export function authorizationHeaders(key: string | undefined): Record<string, string> {
  return key === undefined ? {} : { authorization: `Bearer ${key}` };
}
