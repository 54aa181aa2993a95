import { InvalidModelNameError } from "../domain/errors.js";
import { formatModelName, parseModelName } from "../domain/model-name.js";

/** Where a pull gets its model from. */
export type PullSource = HubSource | RegistrySource;

/** A Hugging Face Hub repository. */
export interface HubSource {
  kind: "huggingface";
  /** "owner/name", as the Hub spells it (ids are case-sensitive there). */
  repo: string;
  /**
   * What to take from it: "default" (Q4_K_M when it fits, else the best fit), "auto" (the best fit), or what the
   * tag said: a quantization ("Q4_K_M", any case) or a file name in the repository.
   */
  tag: "default" | "auto" | { text: string };
}

/** A model in an Ollama registry (Ollama's library, or another registry speaking its protocol). */
export interface RegistrySource {
  kind: "ollama";
  /** Base URL of the registry, e.g. "https://registry.ollama.ai". */
  registry: string;
  namespace: string;
  model: string;
  tag: string;
}

export interface PullTarget {
  /** The name the model is stored under: the name as given, normalised. */
  name: string;
  source: PullSource;
}

const HUB_HOSTS = new Set(["hf.co", "huggingface.co", "www.huggingface.co"]);
const OLLAMA_HOSTS = new Set(["ollama.com", "www.ollama.com", "registry.ollama.ai"]);

/**
 * Reads a pull name:
 * - `hf.co/{owner}/{repo}[:{tag}]`, `huggingface.co/…`, a pasted `https://huggingface.co/{owner}/{repo}` URL (also
 *   one of a file: `…/blob/main/x.gguf` takes that file), and `{owner}/{repo}[:{tag}]` mean the Hugging Face Hub;
 * - a name with no slash (`llama3.2`, `llama3.2:1b`) and `ollama.com/{ns}/{model}[:{tag}]` mean Ollama's registry
 *   (`ollamaRegistry`); another host (`registry.example:5000/ns/model:tag`) is a registry of its own.
 * The stored name is the name as given, normalised: Hub hosts are spelt `hf.co`, Ollama's library namespace is
 * dropped, the tag defaults to `latest`.
 */
export function parsePullName(input: string, ollamaRegistry: string, options: { insecure?: boolean } = {}): PullTarget {
  const text = fromUrl(input.trim());
  const parsed = parseModelName(text);
  const host = parsed.host?.toLowerCase();
  const first = parsed.namespace?.toLowerCase() ?? "";
  if (host === undefined && (HUB_HOSTS.has(first) || OLLAMA_HOSTS.has(first))) {
    throw new InvalidModelNameError(`invalid model name "${input}": after ${parsed.namespace}/ comes {owner}/{repo}`);
  }
  if (host === undefined ? parsed.namespace !== undefined : HUB_HOSTS.has(host)) {
    if (parsed.namespace === undefined) throw new InvalidModelNameError(`invalid model name "${input}": a Hugging Face name is owner/repo`);
    const name = formatModelName({ ...(host && { host: "hf.co" }), namespace: parsed.namespace, model: parsed.model, tag: parsed.tag });
    return { name, source: { kind: "huggingface", repo: `${parsed.namespace}/${parsed.model}`, tag: hubTag(parsed.tag) } };
  }
  const namespace = parsed.namespace ?? "library";
  const official = host === undefined || OLLAMA_HOSTS.has(host);
  const registry = official ? ollamaRegistry : `${options.insecure ? "http" : "https"}://${parsed.host}`;
  // Ollama's own library is stored without host or namespace (llama3.2:1b); everything else keeps its host, since
  // a two-part name means the Hugging Face Hub.
  const name =
    official && namespace === "library"
      ? formatModelName({ model: parsed.model, tag: parsed.tag })
      : formatModelName({ host: official ? "ollama.com" : (parsed.host ?? ""), namespace, model: parsed.model, tag: parsed.tag });
  return { name, source: { kind: "ollama", registry, namespace, model: parsed.model, tag: parsed.tag } };
}

function hubTag(tag: string): HubSource["tag"] {
  const lower = tag.toLowerCase();
  if (lower === "latest") return "default";
  if (lower === "auto") return "auto";
  return { text: tag };
}

/** `https://huggingface.co/owner/repo[/tree|blob|resolve/rev/path]` → `hf.co/owner/repo[:file]`; other input as is. */
function fromUrl(input: string): string {
  if (!/^https?:\/\//i.test(input)) return input;
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    throw new InvalidModelNameError(`invalid model name "${input}": not a URL`);
  }
  const [owner, repo, kind, , ...file] = url.pathname.split("/").filter(Boolean);
  if (!HUB_HOSTS.has(url.hostname.toLowerCase()) || !owner || !repo) {
    throw new InvalidModelNameError(`invalid model name "${input}": only https://huggingface.co/{owner}/{repo} URLs can be pulled`);
  }
  const fileName = (kind === "blob" || kind === "resolve") && file.length > 0 ? file[file.length - 1] : undefined;
  return `hf.co/${owner}/${repo}${fileName ? `:${decodeURIComponent(fileName)}` : ""}`;
}
