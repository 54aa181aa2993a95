/** Origins always allowed: local pages and app/extension schemes (as Ollama allows them). */
const DEFAULT_ORIGINS = [
  "http://localhost", "https://localhost", "http://localhost:*", "https://localhost:*",
  "http://127.0.0.1", "https://127.0.0.1", "http://127.0.0.1:*", "https://127.0.0.1:*",
  "http://0.0.0.0", "https://0.0.0.0", "http://0.0.0.0:*", "https://0.0.0.0:*",
  "app://*", "file://*", "tauri://*", "vscode-webview://*", "vscode-file://*",
];

/** Whether a browser origin may call the API; `extra` entries may use `*` wildcards. */
export function isAllowedOrigin(origin: string, extra: readonly string[]): boolean {
  return [...DEFAULT_ORIGINS, ...extra].some((pattern) => wildcard(pattern).test(origin));
}

function wildcard(pattern: string): RegExp {
  const escaped = pattern.split("*").map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join(".*");
  return new RegExp(`^${escaped}$`, "i");
}
