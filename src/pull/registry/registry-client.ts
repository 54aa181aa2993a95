import { createHash } from "node:crypto";
import { z } from "zod";
import { DownloadVerificationError, UpstreamAccessError, UpstreamError, UpstreamNotFoundError, type AppError } from "../../domain/errors.js";
import type { RegistrySource } from "../pull-name.js";
import { upstreamFetch, upstreamJson } from "../upstream-http.js";

/** A layer of an Ollama model: its kind and the blob that holds it. */
export interface RegistryLayer {
  /** e.g. "application/vnd.ollama.image.model", "…template", "…params", "…system", "…license", "…projector". */
  mediaType: string;
  digest: string;
  size: number;
}

const MANIFEST_TYPES = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json";
const DIGEST = /^sha256:[0-9a-f]{64}$/;

const manifestSchema = z.object({
  schemaVersion: z.number().optional(),
  layers: z.array(z.object({ mediaType: z.string(), digest: z.string().regex(DIGEST), size: z.number().int().nonnegative() })),
});

/** Small layers (template, params, system, license) are read whole; anything larger is not one of them. */
const LONGEST_TEXT_LAYER = 4 << 20;

/**
 * Ollama's registry protocol (Docker distribution v2 with Ollama's media types): a model's manifest and the URLs
 * of its blobs. Works with Ollama's public registry and any mirror at AI_SERVER_OLLAMA_REGISTRY.
 */
export class RegistryClient {
  constructor(private readonly onNotice?: (message: string) => void) {}

  async manifest(source: RegistrySource, signal?: AbortSignal): Promise<RegistryLayer[]> {
    const url = `${source.registry}/v2/${source.namespace}/${source.model}/manifests/${source.tag}`;
    const { value } = await upstreamJson({ url, headers: { accept: MANIFEST_TYPES }, ...this.common(source, signal) });
    const parsed = manifestSchema.safeParse(value);
    if (!parsed.success) throw new UpstreamError(`${url} answered a manifest of an unexpected shape: ${parsed.error.issues[0]?.message ?? "invalid"}`);
    return parsed.data.layers;
  }

  blobUrl(source: RegistrySource, digest: string): string {
    return `${source.registry}/v2/${source.namespace}/${source.model}/blobs/${digest}`;
  }

  /** A small text layer, verified against its digest. */
  async text(source: RegistrySource, layer: RegistryLayer, signal?: AbortSignal): Promise<string> {
    if (layer.size > LONGEST_TEXT_LAYER) throw new UpstreamError(`layer ${layer.digest} (${layer.mediaType}) is ${layer.size} bytes, too large for text`);
    const response = await upstreamFetch({ url: this.blobUrl(source, layer.digest), ...this.common(source, signal) });
    const bytes = Buffer.from(await response.arrayBuffer());
    const digest = `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
    if (digest !== layer.digest) throw new DownloadVerificationError(`layer ${layer.mediaType} of ${nameOf(source)}: expected ${layer.digest}, got ${digest}`);
    return bytes.toString("utf8");
  }

  private common(source: RegistrySource, signal: AbortSignal | undefined) {
    return {
      ...(signal && { signal }),
      ...(this.onNotice && { onNotice: this.onNotice }),
      describeFailure: (response: Response, body: string): AppError => failure(source, response, body),
    };
  }
}

function failure(source: RegistrySource, response: Response, body: string): AppError {
  const where = `the Ollama registry at ${source.registry}`;
  if (response.status === 404) return new UpstreamNotFoundError(`model "${nameOf(source)}" was not found in ${where}${registryMessage(body)}`);
  if (response.status === 401 || response.status === 403) return new UpstreamAccessError(`${where} refused access to "${nameOf(source)}" (${response.status}${registryMessage(body)})`);
  return new UpstreamError(`${where} answered ${response.status} for "${nameOf(source)}"${registryMessage(body)}`);
}

function nameOf(source: RegistrySource): string {
  return `${source.namespace === "library" ? "" : `${source.namespace}/`}${source.model}:${source.tag}`;
}

/** `{"errors":[{"code","message"}]}` → ": MANIFEST_UNKNOWN manifest unknown". */
function registryMessage(body: string): string {
  try {
    const parsed = z.object({ errors: z.array(z.object({ code: z.string().optional(), message: z.string().optional() })) }).parse(JSON.parse(body));
    const first = parsed.errors[0];
    return first ? `: ${[first.code, first.message].filter(Boolean).join(" ")}` : "";
  } catch {
    return "";
  }
}
