import { readFile } from "node:fs/promises";
import path from "node:path";
import { z } from "zod";
import { UpstreamAccessError, UpstreamError, UpstreamNotFoundError, type AppError } from "../../domain/errors.js";
import { upstreamFetch, upstreamJson } from "../upstream-http.js";

/** Where the Hub is and who we are to it. */
export interface HubSettings {
  /** HF_ENDPOINT, e.g. "https://huggingface.co". */
  endpoint: string;
  /** HF_TOKEN; empty: the token file. */
  token: string;
  /** HF_TOKEN_PATH; empty: $HF_HOME/token. */
  tokenPath: string;
  /** HF_HOME. */
  home: string;
}

/** A file in a repository's tree. */
export interface HubFile {
  path: string;
  size: number;
  /** sha256 of the content, for LFS (and Xet) files: every GGUF. */
  sha256?: string;
  /** The git blob id (sha1), which every file has. */
  gitOid: string;
}

export interface HubRepo {
  /** "owner/name" as the Hub spells it. */
  id: string;
  /** The commit of the main branch: files are listed and downloaded at it, so a pull never mixes two commits. */
  sha: string;
  gated: false | "auto" | "manual";
  private: boolean;
}

const repoSchema = z.object({
  id: z.string().optional(),
  modelId: z.string().optional(),
  sha: z.string(),
  gated: z.union([z.literal(false), z.literal("auto"), z.literal("manual")]).optional().catch(false),
  private: z.boolean().optional(),
});

const treeSchema = z.array(
  z.object({
    type: z.string(),
    path: z.string(),
    size: z.number(),
    oid: z.string(),
    lfs: z.object({ oid: z.string(), size: z.number() }).optional().nullable(),
  }),
);

const searchSchema = z.array(z.object({ id: z.string().optional(), modelId: z.string().optional(), downloads: z.number().optional() }));

/**
 * The Hugging Face Hub's documented HTTP API, as far as pulling needs it: repository info, its file tree with sizes
 * and sha256s, the GGUF quantizations of a base model, and the `resolve` URL of a file. Honours HF_ENDPOINT and
 * the token (HF_TOKEN, else the file huggingface_hub writes), and turns the Hub's refusals into errors that say what
 * to do.
 */
export class HubClient {
  private constructor(private readonly endpoint: string, private readonly token: string | undefined, private readonly onNotice?: (message: string) => void) {}

  /** A client with the token from HF_TOKEN or the token file (read now, so a fresh login counts). */
  static async open(settings: HubSettings, onNotice?: (message: string) => void): Promise<HubClient> {
    return new HubClient(settings.endpoint, await hubToken(settings), onNotice);
  }

  /** Authorization for requests to the Hub itself (never sent where its redirects lead). */
  authHeaders(): Record<string, string> {
    return this.token ? { authorization: `Bearer ${this.token}` } : {};
  }

  /** The page of a repository, for messages. */
  pageOf(repo: string): string {
    return `${this.endpoint}/${repo}`;
  }

  async repo(repo: string, signal?: AbortSignal): Promise<HubRepo> {
    const { value } = await upstreamJson({ url: `${this.endpoint}/api/models/${repo}`, ...this.common(repo, signal) });
    const info = parse(repoSchema, value, `${this.endpoint}/api/models/${repo}`);
    return { id: info.id ?? info.modelId ?? repo, sha: info.sha, gated: info.gated ?? false, private: info.private ?? false };
  }

  /** Every file of the repository at `revision`, with sizes and hashes (the tree, all pages). */
  async files(repo: string, revision: string, signal?: AbortSignal): Promise<HubFile[]> {
    const files: HubFile[] = [];
    let url: string | undefined = `${this.endpoint}/api/models/${repo}/tree/${revision}?recursive=true`;
    while (url !== undefined) {
      const page: { value: unknown; response: Response } = await upstreamJson({ url, ...this.common(repo, signal) });
      for (const entry of parse(treeSchema, page.value, url)) {
        if (entry.type !== "file") continue;
        files.push({ path: entry.path, size: entry.size, gitOid: entry.oid, ...(entry.lfs && { sha256: entry.lfs.oid }) });
      }
      url = nextPage(page.response.headers.get("link"), url);
    }
    return files;
  }

  /** Repositories holding GGUF quantizations of `baseRepo`, most downloaded first. */
  async ggufQuantizationsOf(baseRepo: string, signal?: AbortSignal): Promise<string[]> {
    const query = new URLSearchParams([["filter", `base_model:quantized:${baseRepo}`], ["filter", "gguf"], ["sort", "downloads"], ["direction", "-1"], ["limit", "20"]]);
    const url = `${this.endpoint}/api/models?${query}`;
    const { value } = await upstreamJson({ url, ...this.common(baseRepo, signal) });
    return parse(searchSchema, value, url)
      .map((found) => found.id ?? found.modelId)
      .filter((id): id is string => id !== undefined);
  }

  /** The download URL of a file at a revision. */
  fileUrl(repo: string, revision: string, filePath: string): string {
    return `${this.endpoint}/${repo}/resolve/${revision}/${filePath.split("/").map(encodeURIComponent).join("/")}`;
  }

  /**
   * Asks for a file without downloading it (HEAD, no redirect followed), so that a gated repository, a missing
   * token or a vanished file fails the pull before any byte is fetched.
   */
  async checkAccess(repo: string, revision: string, filePath: string, signal?: AbortSignal): Promise<void> {
    const response = await upstreamFetch({ url: this.fileUrl(repo, revision, filePath), method: "HEAD", followRedirects: false, ...this.common(repo, signal) });
    await response.body?.cancel();
  }

  private common(repo: string, signal: AbortSignal | undefined) {
    return {
      headers: this.authHeaders(),
      ...(signal && { signal }),
      ...(this.onNotice && { onNotice: this.onNotice }),
      describeFailure: (response: Response, body: string) => this.failure(repo, response, body),
    };
  }

  /** The Hub's refusals, as errors that say what to do. */
  private failure(repo: string, response: Response, body: string): AppError {
    const code = response.headers.get("x-error-code") ?? "";
    const said = hubMessage(body);
    const page = this.pageOf(repo);
    if (code === "GatedRepo" && response.status === 403) {
      return new UpstreamAccessError(`"${repo}" is a gated repository and the Hugging Face account of this server's token has not been granted access: accept its terms at ${page}, then pull again`);
    }
    if (code === "GatedRepo" || (response.status === 401 && code !== "RepoNotFound" && this.token === undefined && said.includes("restricted"))) {
      return new UpstreamAccessError(`"${repo}" is a gated repository: accept its terms at ${page} and give the server a token of that account (HF_TOKEN, or huggingface-cli login)`);
    }
    if (response.status === 401 && this.token !== undefined && code !== "RepoNotFound") {
      return new UpstreamAccessError(`the Hugging Face Hub refused the token (HF_TOKEN or the token file): it is invalid or expired${said ? ` (${said})` : ""}`);
    }
    if (code === "RevisionNotFound") return new UpstreamNotFoundError(`revision not found in "${repo}" on the Hugging Face Hub${said ? `: ${said}` : ""}`);
    if (code === "EntryNotFound") return new UpstreamNotFoundError(`file not found in "${repo}" on the Hugging Face Hub${said ? `: ${said}` : ""}`);
    if (response.status === 401 || response.status === 404 || code === "RepoNotFound") {
      const hint = this.token === undefined ? " (if it is private, give the server a token that can read it: HF_TOKEN, or huggingface-cli login)" : "";
      return new UpstreamNotFoundError(`repository "${repo}" was not found on the Hugging Face Hub${hint}`);
    }
    if (response.status === 403) return new UpstreamAccessError(`the Hugging Face Hub refused access to "${repo}" (403${said ? `: ${said}` : ""})`);
    return new UpstreamError(`the Hugging Face Hub answered ${response.status} for "${repo}"${said ? `: ${said}` : ""}`);
  }
}

/** HF_TOKEN, else the token file (HF_TOKEN_PATH, else $HF_HOME/token); undefined when there is none. */
async function hubToken(settings: HubSettings): Promise<string | undefined> {
  if (settings.token.trim() !== "") return settings.token.trim();
  const file = settings.tokenPath !== "" ? settings.tokenPath : path.join(settings.home, "token");
  const text = await readFile(file, "utf8").catch(() => "");
  return text.trim() === "" ? undefined : text.trim();
}

/** The `error` of a Hub error body, else its start. */
function hubMessage(body: string): string {
  try {
    const parsed: unknown = JSON.parse(body);
    if (typeof parsed === "object" && parsed !== null && "error" in parsed && typeof parsed.error === "string") return parsed.error;
  } catch {
    // not JSON
  }
  return body.trim().slice(0, 200);
}

/** The `rel="next"` URL of a Link header, resolved against the current page. */
function nextPage(link: string | null, current: string): string | undefined {
  const match = /<([^>]+)>\s*;\s*rel="?next"?/.exec(link ?? "");
  return match?.[1] === undefined ? undefined : new URL(match[1], current).toString();
}

function parse<T>(schema: z.ZodType<T>, value: unknown, url: string): T {
  const result = schema.safeParse(value);
  if (!result.success) throw new UpstreamError(`${url} answered an unexpected shape: ${result.error.issues[0]?.message ?? "invalid"}`);
  return result.data;
}
