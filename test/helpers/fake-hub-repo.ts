/**
 * The repositories of the fake Hugging Face Hub, as the Hub stores them: every file with its size, sha256 and git
 * blob id (for LFS files, the id of the LFS pointer git holds instead of the bytes), the repo's commit sha, its tags
 * (derived like the Hub's: library, `gguf`, `base_model:…`) and, for GGUF repos, the `gguf` summary the Hub reads
 * from the model file's header.
 */
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { readGguf } from "../../src/gguf/read-gguf.js";
import { fileDigest } from "./fake-cdn.js";

/** A file of a fake repo: from disk (`file`) or small contents in memory (`content`). */
export interface FakeRepoFile {
  /** Path in the repo, e.g. `Q8_0/model-Q8_0-00001-of-00002.gguf`. */
  path: string;
  file?: string;
  content?: string | Buffer;
  /** The known sha256 and size of `file`: skips hashing it (for a multi-GB benchmark file hashed once). */
  sha256?: string;
  size?: number;
}

/** A repo as a test defines it. Defaults: public, not gated, 0 downloads, commit sha derived from the files. */
export interface FakeRepo {
  /** `owner/name`, case-sensitive as on the Hub. */
  id: string;
  files: FakeRepoFile[];
  gated?: false | "auto" | "manual";
  private?: boolean;
  /** `cardData.base_model`; with GGUF files it also tags the repo `base_model:quantized:{baseModel}`. */
  baseModel?: string;
  /** How the repo derives from `baseModel` (its `base_model:{relation}:…` tag). Default: quantized for GGUF repos, else finetune. */
  baseModelRelation?: "quantized" | "finetune" | "adapter" | "merge";
  downloads?: number;
  likes?: number;
  /** Tags besides the derived ones. */
  tags?: string[];
  /** The commit sha (40 hex digits). */
  sha?: string;
  /** Default: "gguf" with GGUF files, "transformers" with safetensors ones. */
  libraryName?: string;
  /** Default "text-generation". */
  pipelineTag?: string;
  /** ISO date. */
  createdAt?: string;
}

/** A file as the Hub serves it. */
export interface HubFile {
  path: string;
  size: number;
  /** sha256 of the contents, hex. */
  sha256: string;
  /** git blob sha1 of what git stores: the contents, or for an LFS file its pointer. */
  gitOid: string;
  /** Present for LFS files: the size of the pointer file git holds. */
  lfs?: { pointerSize: number };
  file?: string;
  content?: Buffer;
}

/** The Hub's `gguf` summary of a GGUF repo (from the first model file's header). */
export interface GgufSummary {
  total: number;
  architecture: string;
  context_length?: number;
  chat_template?: string;
  bos_token?: string;
  eos_token?: string;
}

/** A prepared repo. */
export interface HubRepo {
  spec: FakeRepo;
  id: string;
  owner: string;
  sha: string;
  /** Sorted by path; a `.gitattributes` is added when the repo has none, as every Hub repo has one. */
  files: HubFile[];
  tags: string[];
  libraryName: string | undefined;
  gguf: GgufSummary | undefined;
  /** The Hub's `_id`: 24 hex digits. */
  objectId: string;
  createdAt: string;
}

/** Files with these extensions are stored with git LFS (as the Hub's default `.gitattributes` says), whatever their size. */
const LFS_EXTENSIONS = new Set(["gguf", "safetensors", "bin", "pt", "pth", "ckpt", "onnx", "h5", "msgpack", "model", "npy", "npz", "pkl", "zip", "tar", "gz"]);

const GITATTRIBUTES = [...LFS_EXTENSIONS].map((ext) => `*.${ext} filter=lfs diff=lfs merge=lfs -text`).join("\n") + "\n";

/** Whether the Hub stores this file with LFS: by extension, or when it is larger than `lfsThreshold` bytes. */
export function isLfsFile(path: string, size: number, lfsThreshold: number): boolean {
  return LFS_EXTENSIONS.has(path.split(".").pop()?.toLowerCase() ?? "") || size > lfsThreshold;
}

/** The text of a git LFS pointer file. */
export function lfsPointer(sha256: string, size: number): string {
  return `version https://git-lfs.github.com/spec/v1\noid sha256:${sha256}\nsize ${size}\n`;
}

/** git's blob id of `content`: sha1 of `blob {length}\0{content}`. */
export function gitBlobOid(content: Buffer): string {
  return createHash("sha1").update(`blob ${content.length}\0`).update(content).digest("hex");
}

/** Hashes a repo's files and derives what the Hub shows about it. */
export async function prepareRepo(spec: FakeRepo, lfsThreshold: number): Promise<HubRepo> {
  const [owner, name, ...rest] = spec.id.split("/");
  if (!owner || !name || rest.length > 0) throw new Error(`a repo id is owner/name, got ${spec.id}`);
  const specs = spec.files.some((f) => f.path === ".gitattributes") ? spec.files : [{ path: ".gitattributes", content: GITATTRIBUTES }, ...spec.files];
  const files = (await Promise.all(specs.map((f) => prepareFile(f, lfsThreshold)))).sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const has = (ext: string): boolean => files.some((f) => f.path.toLowerCase().endsWith(ext));
  const libraryName = spec.libraryName ?? (has(".gguf") ? "gguf" : has(".safetensors") ? "transformers" : undefined);
  const relation = spec.baseModelRelation ?? (has(".gguf") ? "quantized" : "finetune");
  const tags = [
    ...new Set([
      ...(libraryName ? [libraryName] : []),
      ...(has(".gguf") ? ["gguf"] : []),
      ...(has(".safetensors") ? ["safetensors"] : []),
      ...(spec.tags ?? []),
      ...(spec.baseModel ? [`base_model:${spec.baseModel}`, `base_model:${relation}:${spec.baseModel}`] : []),
    ]),
  ];
  const sha = spec.sha ?? sha1(`${spec.id}\0${files.map((f) => `${f.path}:${f.gitOid}`).join("\n")}`);
  return {
    spec,
    id: spec.id,
    owner,
    sha,
    files,
    tags,
    libraryName,
    gguf: await ggufSummary(files),
    objectId: sha1(`_id:${spec.id}`).slice(0, 24),
    createdAt: spec.createdAt ?? "2024-01-01T00:00:00.000Z",
  };
}

async function prepareFile(spec: FakeRepoFile, lfsThreshold: number): Promise<HubFile> {
  if ((spec.file === undefined) === (spec.content === undefined)) throw new Error(`${spec.path}: give exactly one of file and content`);
  if (spec.content !== undefined) {
    const content = typeof spec.content === "string" ? Buffer.from(spec.content) : spec.content;
    const sha256 = createHash("sha256").update(content).digest("hex");
    return describe(spec.path, content.length, sha256, lfsThreshold, content);
  }
  const file = spec.file as string;
  const { sha256, size } = spec.sha256 !== undefined && spec.size !== undefined ? { sha256: spec.sha256, size: spec.size } : await fileDigest(file);
  const lfs = isLfsFile(spec.path, size, lfsThreshold);
  return describe(spec.path, size, sha256, lfsThreshold, lfs ? undefined : await readFile(file), file);
}

function describe(path: string, size: number, sha256: string, lfsThreshold: number, content?: Buffer, file?: string): HubFile {
  const base = { path, size, sha256, ...(file !== undefined && { file }), ...(content !== undefined && { content }) };
  if (!isLfsFile(path, size, lfsThreshold)) return { ...base, gitOid: gitBlobOid(content as Buffer) };
  const pointer = Buffer.from(lfsPointer(sha256, size));
  return { ...base, gitOid: gitBlobOid(pointer), lfs: { pointerSize: pointer.length } };
}

function sha1(text: string): string {
  return createHash("sha1").update(text).digest("hex");
}

/** Matches the first part of a split GGUF and captures its prefix: `…/name` of `…/name-00001-of-00003.gguf`. */
const FIRST_SPLIT = /^(.*)-00001-of-(\d{5})\.gguf$/;

/**
 * The summary of the repo's first GGUF model file (projectors and imatrix files are not models), counting the
 * parameters of every part of a split model. Files held only in memory, or unreadable, give no summary.
 */
async function ggufSummary(files: HubFile[]): Promise<GgufSummary | undefined> {
  const model = files.find((f) => f.path.endsWith(".gguf") && !/mmproj|imatrix/i.test(f.path) && f.file !== undefined);
  if (!model?.file) return undefined;
  const split = FIRST_SPLIT.exec(model.path);
  const parts = split ? files.filter((f) => f.path.startsWith(`${split[1]}-`) && f.path.endsWith(`-of-${split[2]}.gguf`)) : [model];
  try {
    const headers = await Promise.all(parts.map((part) => readGguf(part.file as string, { maxArrayItems: 1_000_000 })));
    const first = headers[0];
    if (!first) return undefined;
    const meta = first.metadata;
    const architecture = String(meta.get("general.architecture") ?? "");
    const tokens = meta.get("tokenizer.ggml.tokens");
    const token = (key: string): string | undefined => {
      const id = meta.get(key);
      return Array.isArray(tokens) && typeof id === "number" ? String(tokens[id]) : undefined;
    };
    const contextLength = meta.get(`${architecture}.context_length`);
    const chatTemplate = meta.get("tokenizer.chat_template");
    const bos = token("tokenizer.ggml.bos_token_id");
    const eos = token("tokenizer.ggml.eos_token_id");
    return {
      total: headers.reduce((sum, h) => sum + h.tensors.reduce((n, t) => n + Number(t.elements), 0), 0),
      architecture,
      ...(typeof contextLength === "number" && { context_length: contextLength }),
      ...(typeof chatTemplate === "string" && { chat_template: chatTemplate }),
      ...(bos !== undefined && { bos_token: bos }),
      ...(eos !== undefined && { eos_token: eos }),
    };
  } catch {
    return undefined;
  }
}
