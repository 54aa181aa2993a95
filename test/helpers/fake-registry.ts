/**
 * A loopback stand-in for Ollama's registry (what `AI_SERVER_OLLAMA_REGISTRY` points at), speaking the Docker
 * registry v2 subset Ollama pulls with: `GET|HEAD /v2/{namespace}/{model}/manifests/{tag}` (a schema 2 manifest whose
 * layers are the model's GGUF, template, params, system, license and projector blobs, and whose config is a small
 * JSON blob) and `GET|HEAD /v2/{namespace}/{model}/blobs/sha256:{hex}`: small blobs answered directly, larger ones
 * by a 307 to the CDN (another origin), as registry.ollama.ai redirects to its storage. Unknown names answer 404
 * `MANIFEST_UNKNOWN`, unknown blobs 404 `BLOB_UNKNOWN`, in the registry's `{"errors": […]}` shape.
 */
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import type http from "node:http";
import { fileDigest, type FakeCdn } from "./fake-cdn.js";
import { listenLoopback, recordRequest, send, sendBytes, sendJson, type LoopbackServer, type RecordedRequest } from "./fake-http.js";

/** The layer media types Ollama knows. */
export const OLLAMA_MEDIA_TYPES = {
  model: "application/vnd.ollama.image.model",
  template: "application/vnd.ollama.image.template",
  params: "application/vnd.ollama.image.params",
  system: "application/vnd.ollama.image.system",
  license: "application/vnd.ollama.image.license",
  projector: "application/vnd.ollama.image.projector",
  adapter: "application/vnd.ollama.image.adapter",
} as const;

export const MANIFEST_MEDIA_TYPE = "application/vnd.docker.distribution.manifest.v2+json";
const CONFIG_MEDIA_TYPE = "application/vnd.docker.container.image.v1+json";

/** A layer of a fake model: a file on disk (the GGUF) or small contents (template, params JSON, system, license). */
export interface FakeOllamaLayer {
  mediaType: string;
  file?: string;
  content?: string | Buffer;
}

/** A model as a test defines it. */
export interface FakeOllamaModel {
  /** Default "library", Ollama's namespace for its own models. */
  namespace?: string;
  model: string;
  /** Default "latest". */
  tag?: string;
  layers: FakeOllamaLayer[];
  /** Fields of the config blob (default: gguf, llama family, linux/amd64). */
  config?: Record<string, unknown>;
}

/** A manifest as served. */
export interface OllamaManifest {
  schemaVersion: 2;
  mediaType: string;
  config: { mediaType: string; digest: string; size: number };
  layers: Array<{ mediaType: string; digest: string; size: number }>;
}

interface RegistryBlob {
  digest: string;
  size: number;
  file?: string;
  content?: Buffer;
}

export interface FakeRegistryOptions {
  cdn: FakeCdn;
  models?: FakeOllamaModel[];
  /** Blobs of at least this many bytes are redirected to the CDN; smaller ones are answered directly. Default 1024. */
  redirectThreshold?: number;
}

/** The fake registry. Start it with `FakeRegistry.start({ cdn })`. */
export class FakeRegistry {
  /** Every request, in arrival order. */
  readonly requests: RecordedRequest[] = [];
  readonly cdn: FakeCdn;
  redirectThreshold: number;
  /** "namespace/model:tag" → manifest JSON text (served byte for byte, so its digest is stable). */
  private readonly manifests = new Map<string, string>();
  /** "namespace/model" → digest → blob: a blob is only found under the repository whose manifests name it. */
  private readonly blobs = new Map<string, Map<string, RegistryBlob>>();

  private constructor(private readonly server: LoopbackServer, options: FakeRegistryOptions) {
    this.cdn = options.cdn;
    this.redirectThreshold = options.redirectThreshold ?? 1024;
  }

  static async start(options: FakeRegistryOptions): Promise<FakeRegistry> {
    let registry: FakeRegistry | undefined;
    const server = await listenLoopback((req, res) => registry!.handle(req, res));
    registry = new FakeRegistry(server, options);
    for (const model of options.models ?? []) await registry.addModel(model);
    return registry;
  }

  /** The registry's origin: the value for `AI_SERVER_OLLAMA_REGISTRY`. */
  get url(): string {
    return this.server.url;
  }

  /** Adds (or replaces) `namespace/model:tag`; returns its manifest. Layers at or above the threshold become CDN blobs. */
  async addModel(model: FakeOllamaModel): Promise<OllamaManifest> {
    const repository = `${model.namespace ?? "library"}/${model.model}`;
    const blobs = this.blobs.get(repository) ?? new Map<string, RegistryBlob>();
    this.blobs.set(repository, blobs);
    const layers: RegistryBlob[] = [];
    for (const layer of model.layers) layers.push(await this.blobOf(layer));
    const config = Buffer.from(
      JSON.stringify({
        model_format: "gguf",
        model_family: "llama",
        model_families: ["llama"],
        model_type: "1M",
        file_type: "Q8_0",
        architecture: "amd64",
        os: "linux",
        rootfs: { type: "layers", diff_ids: layers.map((l) => l.digest) },
        ...model.config,
      }),
    );
    const configBlob: RegistryBlob = { digest: digestOf(config), size: config.length, content: config };
    for (const blob of [configBlob, ...layers]) blobs.set(blob.digest, blob);
    const manifest: OllamaManifest = {
      schemaVersion: 2,
      mediaType: MANIFEST_MEDIA_TYPE,
      config: { mediaType: CONFIG_MEDIA_TYPE, digest: configBlob.digest, size: configBlob.size },
      layers: model.layers.map((layer, i) => ({ mediaType: layer.mediaType, digest: layers[i]!.digest, size: layers[i]!.size })),
    };
    this.manifests.set(`${repository}:${model.tag ?? "latest"}`, JSON.stringify(manifest));
    return manifest;
  }

  /** The manifest of `namespace/model:tag` (namespace default "library"), if there is one. */
  manifest(model: string, tag = "latest", namespace = "library"): OllamaManifest | undefined {
    const text = this.manifests.get(`${namespace}/${model}:${tag}`);
    return text === undefined ? undefined : (JSON.parse(text) as OllamaManifest);
  }

  close(): Promise<void> {
    return this.server.close();
  }

  private async blobOf(layer: FakeOllamaLayer): Promise<RegistryBlob> {
    if ((layer.file === undefined) === (layer.content === undefined)) throw new Error(`layer ${layer.mediaType}: give exactly one of file and content`);
    if (layer.content !== undefined) {
      const content = typeof layer.content === "string" ? Buffer.from(layer.content) : layer.content;
      if (content.length >= this.redirectThreshold) this.cdn.addContent(content);
      return { digest: digestOf(content), size: content.length, content };
    }
    const file = layer.file as string;
    const { sha256, size } = await fileDigest(file);
    if (size >= this.redirectThreshold) await this.cdn.addFile(file, { sha256, size });
    return { digest: `sha256:${sha256}`, size, file };
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const record = recordRequest(this.requests, req, res);
    res.setHeader("docker-distribution-api-version", "registry/2.0");
    if (req.method !== "GET" && req.method !== "HEAD") return registryError(res, 405, "UNSUPPORTED", "The operation is unsupported.");
    const manifest = /^\/v2\/([^/]+)\/([^/]+)\/manifests\/([^/]+)$/.exec(record.path);
    if (manifest) {
      const text = this.manifests.get(`${manifest[1]}/${manifest[2]}:${manifest[3]}`);
      if (text === undefined) return registryError(res, 404, "MANIFEST_UNKNOWN", "manifest unknown");
      const body = Buffer.from(text);
      return send(res, 200, body, { "content-type": MANIFEST_MEDIA_TYPE, "docker-content-digest": digestOf(body) });
    }
    const blobMatch = /^\/v2\/([^/]+)\/([^/]+)\/blobs\/(sha256:[0-9a-f]{64})$/.exec(record.path);
    if (!blobMatch) return registryError(res, 404, "NAME_UNKNOWN", "repository name not known to registry");
    const digest = blobMatch[3]!;
    const blob = this.blobs.get(`${blobMatch[1]}/${blobMatch[2]}`)?.get(digest);
    if (!blob) return registryError(res, 404, "BLOB_UNKNOWN", "blob unknown to registry", digest);
    if (blob.size >= this.redirectThreshold) {
      const location = this.cdn.signedUrl(digest.slice("sha256:".length));
      return send(res, 307, `<a href="${location}">Temporary Redirect</a>.\n`, { location, "content-type": "text/html; charset=utf-8", "docker-content-digest": digest });
    }
    const content = blob.content ?? (await readFile(blob.file as string));
    sendBytes(res, content, { "content-type": "application/octet-stream", "docker-content-digest": digest, etag: `"${digest}"` }, record);
  }
}

/** The registry's error answer: `{"errors": [{code, message, detail?}]}`. */
function registryError(res: http.ServerResponse, status: number, code: string, message: string, detail?: string): void {
  sendJson(res, status, { errors: [{ code, message, ...(detail !== undefined && { detail }) }] });
}

function digestOf(bytes: Buffer): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}
