/**
 * A loopback stand-in for the Hugging Face Hub's HTTP API (what `HF_ENDPOINT` points at), answering like the real
 * Hub: repo info (`/api/models/{id}[/revision/{rev}]`), the file tree with sizes and LFS sha256
 * (`/api/models/{id}/tree/{rev}[/{path}]`, paginated by `Link` headers), the model search
 * (`/api/models?filter=…&sort=downloads…`), downloads (`/{id}/resolve/{rev}/{path}`: LFS files 302 to the CDN, another
 * origin, with `X-Linked-Etag`/`X-Linked-Size`; small files 307 to `/api/resolve-cache/…`), `/api/whoami-v2`, and the
 * Hub's errors: `X-Error-Code` RepoNotFound / RevisionNotFound / EntryNotFound / GatedRepo, 401 for anonymous callers
 * and invalid tokens, 403 for tokens not granted a gated repo, 429 with `Retry-After` and `RateLimit` headers.
 */
import { createHash } from "node:crypto";
import type http from "node:http";
import { listenLoopback, recordRequest, send, sendBytes, sendJson, type LoopbackServer, type RecordedRequest } from "./fake-http.js";
import type { FakeCdn } from "./fake-cdn.js";
import { prepareRepo, type FakeRepo, type HubFile, type HubRepo } from "./fake-hub-repo.js";

export type { FakeRepo, FakeRepoFile, HubFile, HubRepo, GgufSummary } from "./fake-hub-repo.js";

/** A user's access token: it reads public repos, the private ones of its user's namespace, and the repos in `granted`. */
export interface FakeHubToken {
  token: string;
  user: string;
  /** Gated (or private) repo ids this user was granted. */
  granted?: string[];
}

export interface FakeHubOptions {
  /** Where LFS files are redirected to (the CDN serves their bytes). */
  cdn: FakeCdn;
  repos?: FakeRepo[];
  tokens?: FakeHubToken[];
  /** Entries per page of the tree and the search. Default 1000, as the Hub's tree. */
  pageSize?: number;
  /** Files larger than this are LFS even without an LFS extension. Default 10 MiB, the Hub's limit for plain git. */
  lfsThreshold?: number;
  /** See FakeHub.anonymousRepoNotFound401. Default true. */
  anonymousRepoNotFound401?: boolean;
}

/**
 * A rate limit: the first `times` requests of the bucket answer 429. Buckets as on the Hub: "api" (`/api/…`) and
 * "resolvers" (file downloads: `/resolve/` and `/api/resolve-cache/`).
 */
export interface HubRateLimit {
  times: number;
  retryAfterSeconds: number;
  bucket?: "api" | "resolvers";
}

type Caller = { kind: "anonymous" } | { kind: "user"; token: FakeHubToken } | { kind: "invalid" };

const EXPOSED_HEADERS = "X-Repo-Commit,X-Request-Id,X-Error-Code,X-Error-Message,X-Total-Count,ETag,Link,Accept-Ranges,Content-Range,X-Linked-Size,X-Linked-ETag";

/** The fake Hub. Start it with `FakeHub.start({ cdn })`. */
export class FakeHub {
  /** Every request, in arrival order. */
  readonly requests: RecordedRequest[] = [];
  readonly cdn: FakeCdn;
  pageSize: number;
  lfsThreshold: number;
  /**
   * The real Hub answers anonymous callers 401 (not 404) for a repo that does not exist or is private, with
   * `X-Error-Code: RepoNotFound`. False answers them 404, like authenticated callers.
   */
  anonymousRepoNotFound401: boolean;
  private readonly repos = new Map<string, HubRepo>();
  private readonly tokens = new Map<string, FakeHubToken>();
  private limit: (Required<HubRateLimit> & { left: number }) | undefined;
  private requestCount = 0;

  private constructor(private readonly server: LoopbackServer, options: FakeHubOptions) {
    this.cdn = options.cdn;
    this.pageSize = options.pageSize ?? 1000;
    this.lfsThreshold = options.lfsThreshold ?? 10 * 1024 * 1024;
    this.anonymousRepoNotFound401 = options.anonymousRepoNotFound401 ?? true;
    for (const token of options.tokens ?? []) this.addToken(token);
  }

  static async start(options: FakeHubOptions): Promise<FakeHub> {
    let hub: FakeHub | undefined;
    const server = await listenLoopback((req, res) => hub!.handle(req, res));
    hub = new FakeHub(server, options);
    for (const repo of options.repos ?? []) await hub.addRepo(repo);
    return hub;
  }

  /** The Hub's origin: the value for `HF_ENDPOINT`. */
  get url(): string {
    return this.server.url;
  }

  /** Adds (or replaces) a repo; its LFS files become CDN blobs. */
  async addRepo(spec: FakeRepo): Promise<HubRepo> {
    const repo = await prepareRepo(spec, this.lfsThreshold);
    for (const file of repo.files) {
      if (!file.lfs) continue;
      if (file.file !== undefined) await this.cdn.addFile(file.file, { sha256: file.sha256, size: file.size });
      else this.cdn.addContent(file.content as Buffer);
    }
    this.repos.set(repo.id, repo);
    return repo;
  }

  removeRepo(id: string): void {
    this.repos.delete(id);
  }

  addToken(token: FakeHubToken): void {
    this.tokens.set(token.token, token);
  }

  repo(id: string): HubRepo | undefined {
    return this.repos.get(id);
  }

  /** A file of a repo as served (size, sha256, git oid, LFS or not). */
  file(repoId: string, path: string): HubFile | undefined {
    return this.repos.get(repoId)?.files.find((f) => f.path === path);
  }

  /** Starts a rate limit (replacing any other). */
  rateLimit(limit: HubRateLimit): void {
    this.limit = { bucket: "api", ...limit, left: limit.times };
  }

  clearRateLimit(): void {
    this.limit = undefined;
  }

  close(): Promise<void> {
    return this.server.close();
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const record = recordRequest(this.requests, req, res);
    res.setHeader("x-request-id", `Root=1-fake-${++this.requestCount}`);
    res.setHeader("access-control-expose-headers", EXPOSED_HEADERS);
    const path = record.path;
    const bucket = path.startsWith("/api/") && !path.startsWith("/api/resolve-cache/") ? "api" : "resolvers";
    if (this.limit && this.limit.bucket === bucket && this.limit.left > 0) {
      this.limit.left--;
      const seconds = this.limit.retryAfterSeconds;
      return sendJson(res, 429, { error: `You have exceeded the rate limit for ${bucket} requests. Retry in ${seconds} seconds.` }, {
        "retry-after": String(seconds),
        ratelimit: `"${bucket}";r=0;t=${seconds}`,
        "ratelimit-policy": `"fixed window";"${bucket}";q=${bucket === "api" ? 1000 : 5000};w=300`,
      });
    }
    const caller = this.caller(req);
    if (caller.kind === "invalid") return hubError(res, 401, "Invalid credentials in Authorization header");
    if (req.method !== "GET" && req.method !== "HEAD") return hubError(res, 405, "Method not allowed");

    let m: RegExpExecArray | null;
    if (path === "/api/whoami-v2") return this.whoami(res, caller);
    if (path === "/api/models") return this.search(res, caller, record.query);
    if ((m = /^\/api\/models\/([^/]+\/[^/]+)(?:\/revision\/([^/]+))?$/.exec(path))) return this.info(res, caller, m[1]!, m[2] ?? "main", record.query);
    if ((m = /^\/api\/models\/([^/]+\/[^/]+)\/tree\/([^/]+)(?:\/(.+?))?\/?$/.exec(path))) return this.tree(res, caller, m[1]!, m[2]!, m[3] ?? "", record.query);
    if ((m = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(path))) return this.resolve(res, caller, m[1]!, m[2]!, m[3]!);
    if ((m = /^\/api\/resolve-cache\/models\/([^/]+\/[^/]+)\/([0-9a-f]{40})\/(.+)$/.exec(path))) return this.resolveCache(res, caller, m[1]!, m[2]!, m[3]!, record);
    hubError(res, 404, "Sorry, we can't find the page you are looking for.");
  }

  private caller(req: http.IncomingMessage): Caller {
    const header = req.headers.authorization;
    if (header === undefined) return { kind: "anonymous" };
    const token = /^Bearer (\S+)$/i.exec(header)?.[1];
    const known = token === undefined ? undefined : this.tokens.get(token);
    return known ? { kind: "user", token: known } : { kind: "invalid" };
  }

  private canRead(repo: HubRepo, caller: Caller): boolean {
    return !repo.spec.private || this.isMember(repo, caller);
  }

  private isMember(repo: HubRepo, caller: Caller): boolean {
    return caller.kind === "user" && (caller.token.user === repo.owner || (caller.token.granted ?? []).includes(repo.id));
  }

  /** The repo if the caller may see it at this revision; otherwise answers the Hub's error and returns undefined. */
  private visibleRepo(res: http.ServerResponse, caller: Caller, id: string, revision: string): HubRepo | undefined {
    const repo = this.repos.get(id);
    if (!repo || !this.canRead(repo, caller)) {
      if (caller.kind === "anonymous" && this.anonymousRepoNotFound401) hubError(res, 401, "Invalid username or password.", "RepoNotFound");
      else hubError(res, 404, "Repository not found", "RepoNotFound");
      return undefined;
    }
    if (revision !== "main" && revision !== repo.sha) {
      hubError(res, 404, `Invalid rev id: ${revision}`, "RevisionNotFound");
      return undefined;
    }
    return repo;
  }

  private whoami(res: http.ServerResponse, caller: Caller): void {
    if (caller.kind !== "user") return hubError(res, 401, "Invalid credentials in Authorization header");
    const { user } = caller.token;
    sendJson(res, 200, { type: "user", id: user, name: user, fullname: user, orgs: [], auth: { type: "access_token", accessToken: { displayName: "fake", role: "read" } } });
  }

  private info(res: http.ServerResponse, caller: Caller, id: string, revision: string, query: URLSearchParams): void {
    const repo = this.visibleRepo(res, caller, id, revision);
    if (!repo) return;
    const blobs = query.get("blobs") === "true" || query.get("blobs") === "1";
    const spec = repo.spec;
    sendJson(res, 200, {
      _id: repo.objectId,
      id: repo.id,
      modelId: repo.id,
      author: repo.owner,
      sha: repo.sha,
      lastModified: repo.createdAt,
      private: spec.private ?? false,
      gated: spec.gated ?? false,
      disabled: false,
      downloads: spec.downloads ?? 0,
      likes: spec.likes ?? 0,
      ...(repo.libraryName !== undefined && { library_name: repo.libraryName }),
      tags: repo.tags,
      pipeline_tag: spec.pipelineTag ?? "text-generation",
      createdAt: repo.createdAt,
      cardData: { ...(spec.baseModel !== undefined && { base_model: spec.baseModel }), ...(spec.tags && { tags: spec.tags }) },
      siblings: repo.files.map((f) =>
        blobs
          ? { rfilename: f.path, blobId: f.gitOid, size: f.size, ...(f.lfs && { lfs: { sha256: f.sha256, size: f.size, pointerSize: f.lfs.pointerSize } }) }
          : { rfilename: f.path },
      ),
      ...(repo.gguf && { gguf: repo.gguf }),
      spaces: [],
      usedStorage: repo.files.reduce((sum, f) => sum + f.size, 0),
    });
  }

  private tree(res: http.ServerResponse, caller: Caller, id: string, revision: string, dir: string, query: URLSearchParams): void {
    const repo = this.visibleRepo(res, caller, id, revision);
    if (!repo) return;
    const recursive = query.get("recursive") === "true" || query.get("recursive") === "1";
    const prefix = dir === "" ? "" : `${dir}/`;
    if (dir !== "" && !repo.files.some((f) => f.path.startsWith(prefix))) {
      return hubError(res, 404, `${dir} does not exist on "${revision}"`, "EntryNotFound");
    }
    const entries = treeEntries(repo, prefix, recursive);
    paginate(res, query, entries, this.pageSize);
  }

  private search(res: http.ServerResponse, caller: Caller, query: URLSearchParams): void {
    const filters = query.getAll("filter").flatMap((f) => f.split(",")).filter((f) => f !== "");
    const text = query.get("search")?.toLowerCase();
    const author = query.get("author");
    const sort = query.get("sort");
    const direction = query.get("direction") === "1" ? 1 : -1;
    const limit = Number(query.get("limit") ?? NaN);
    const key = (repo: HubRepo): number | string => {
      switch (sort) {
        case "downloads": return repo.spec.downloads ?? 0;
        case "likes": return repo.spec.likes ?? 0;
        case "createdAt":
        case "lastModified": return repo.createdAt;
        default: return 0;
      }
    };
    const found = [...this.repos.values()]
      .filter((repo) => this.canRead(repo, caller))
      .filter((repo) => filters.every((f) => repo.tags.includes(f) || repo.libraryName === f))
      .filter((repo) => text === undefined || repo.id.toLowerCase().includes(text))
      .filter((repo) => author === null || repo.owner === author)
      .sort((a, b) => (key(a) < key(b) ? -direction : key(a) > key(b) ? direction : 0))
      .map((repo) => ({
        _id: repo.objectId,
        id: repo.id,
        likes: repo.spec.likes ?? 0,
        trendingScore: 0,
        private: repo.spec.private ?? false,
        downloads: repo.spec.downloads ?? 0,
        tags: repo.tags,
        pipeline_tag: repo.spec.pipelineTag ?? "text-generation",
        ...(repo.libraryName !== undefined && { library_name: repo.libraryName }),
        createdAt: repo.createdAt,
        modelId: repo.id,
      }));
    paginate(res, query, found, Number.isInteger(limit) && limit > 0 ? limit : this.pageSize);
  }

  /** Refuses a gated repo's files to a caller not granted access: 401 when anonymous, else 403 (and returns true). */
  private gateRefusal(res: http.ServerResponse, caller: Caller, repo: HubRepo): boolean {
    if (!repo.spec.gated || this.isMember(repo, caller)) return false;
    if (caller.kind === "anonymous") {
      hubError(res, 401, `Access to model ${repo.id} is restricted. You must have access to it and be authenticated to access it. Please log in.`, "GatedRepo");
    } else {
      hubError(res, 403, `Access to model ${repo.id} is restricted and you are not in the authorized list. Visit https://huggingface.co/${repo.id} to ask for access.`, "GatedRepo");
    }
    return true;
  }

  private resolve(res: http.ServerResponse, caller: Caller, id: string, revision: string, path: string): void {
    const repo = this.visibleRepo(res, caller, id, revision);
    if (!repo || this.gateRefusal(res, caller, repo)) return;
    const file = repo.files.find((f) => f.path === path);
    if (!file) return hubError(res, 404, "Entry not found", "EntryNotFound");
    if (file.lfs) return this.redirectToCdn(res, repo, file);
    const encodedPath = path.split("/").map(encodeURIComponent).join("/");
    const original = encodeURIComponent(`/${repo.id}/resolve/${revision}/${path}`);
    const location = `/api/resolve-cache/models/${repo.id}/${repo.sha}/${encodedPath}?${original}=&etag=%22${file.gitOid}%22`;
    send(res, 307, `Temporary Redirect. Redirecting to ${location}`, {
      location,
      "content-type": "text/plain; charset=utf-8",
      "x-repo-commit": repo.sha,
      etag: `"${file.gitOid}"`,
    });
  }

  private redirectToCdn(res: http.ServerResponse, repo: HubRepo, file: HubFile): void {
    const location = this.cdn.signedUrl(file.sha256);
    send(res, 302, `Found. Redirecting to ${location}`, {
      location,
      "content-type": "text/plain; charset=utf-8",
      "x-repo-commit": repo.sha,
      "x-linked-etag": `"${file.sha256}"`,
      "x-linked-size": String(file.size),
      etag: `"${file.sha256}"`,
    });
  }

  private resolveCache(res: http.ServerResponse, caller: Caller, id: string, sha: string, path: string, record: RecordedRequest): void {
    const repo = this.visibleRepo(res, caller, id, sha);
    if (!repo || this.gateRefusal(res, caller, repo)) return;
    const file = repo.files.find((f) => f.path === path);
    if (!file) return hubError(res, 404, "Entry not found", "EntryNotFound");
    if (file.lfs) return this.redirectToCdn(res, repo, file);
    sendBytes(res, file.content as Buffer, { "content-type": contentType(path), etag: `"${file.gitOid}"`, "x-repo-commit": repo.sha }, record);
  }
}

/** The Hub's error answer: JSON `{error}`, with `X-Error-Message` and, when given, `X-Error-Code`. */
function hubError(res: http.ServerResponse, status: number, message: string, code?: string): void {
  sendJson(res, status, { error: message }, { "x-error-message": message, ...(code !== undefined && { "x-error-code": code }) });
}

function contentType(path: string): string {
  if (path.endsWith(".json")) return "application/json; charset=utf-8";
  if (path.endsWith(".md")) return "text/markdown; charset=utf-8";
  return "text/plain; charset=utf-8";
}

interface TreeEntry {
  type: "file" | "directory";
  oid: string;
  size: number;
  path: string;
  lfs?: { oid: string; size: number; pointerSize: number };
}

/** The tree under `prefix` (all of it, or its direct children), folders as `directory` entries, sorted by path. */
function treeEntries(repo: HubRepo, prefix: string, recursive: boolean): TreeEntry[] {
  const entries = new Map<string, TreeEntry>();
  for (const file of repo.files) {
    if (!file.path.startsWith(prefix)) continue;
    const rest = file.path.slice(prefix.length).split("/");
    const depth = recursive ? rest.length : 1;
    for (let i = 1; i <= depth; i++) {
      const path = prefix + rest.slice(0, i).join("/");
      if (i < rest.length) {
        if (!entries.has(path)) entries.set(path, { type: "directory", oid: directoryOid(repo, path), size: 0, path });
      } else {
        entries.set(path, {
          type: "file",
          oid: file.gitOid,
          size: file.size,
          path,
          ...(file.lfs && { lfs: { oid: file.sha256, size: file.size, pointerSize: file.lfs.pointerSize } }),
        });
      }
    }
  }
  return [...entries.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

function directoryOid(repo: HubRepo, path: string): string {
  const inside = repo.files.filter((f) => f.path.startsWith(`${path}/`)).map((f) => `${f.path}:${f.gitOid}`);
  return createHash("sha1").update(inside.join("\n")).digest("hex");
}

/**
 * Answers one page of `items` as the Hub does: `limit` items from the opaque `cursor`, with
 * `Link: <next page URL>; rel="next"` while more remain.
 */
function paginate(res: http.ServerResponse, query: URLSearchParams, items: unknown[], pageSize: number): void {
  const offset = decodeCursor(query.get("cursor"));
  const page = items.slice(offset, offset + pageSize);
  const headers: http.OutgoingHttpHeaders = {};
  if (offset + pageSize < items.length) {
    const next = new URLSearchParams(query);
    next.set("cursor", Buffer.from(JSON.stringify({ offset: offset + pageSize })).toString("base64url"));
    const url = new URL(res.req.url ?? "/", `http://${res.req.headers.host ?? "127.0.0.1"}`);
    headers.link = `<${url.origin}${url.pathname}?${next.toString()}>; rel="next"`;
  }
  sendJson(res, 200, page, headers);
}

function decodeCursor(cursor: string | null): number {
  if (cursor === null) return 0;
  try {
    const offset = (JSON.parse(Buffer.from(cursor, "base64url").toString()) as { offset?: unknown }).offset;
    return typeof offset === "number" && Number.isInteger(offset) && offset >= 0 ? offset : 0;
  } catch {
    return 0;
  }
}
