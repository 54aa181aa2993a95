import path from "node:path";
import { SubstitutionRefusedError, UpstreamError, UpstreamNotFoundError } from "../domain/errors.js";
import type { PullChoice, PullRequest } from "../domain/job.js";
import { describe, fits } from "../scheduler/memory.js";
import { chooseFile } from "./choose.js";
import { remoteFootprint, type Footprint, type FootprintEstimator, type RemoteFile } from "./footprint.js";
import { ggufCandidates, type GgufCandidate } from "./hub/gguf-candidates.js";
import { HubClient, type HubFile, type HubSettings } from "./hub/hub-client.js";
import { parsePullName, type HubSource, type RegistrySource } from "./pull-name.js";
import { RegistryClient, type RegistryLayer } from "./registry/registry-client.js";

/** A file to fetch. */
export interface PlannedFile {
  /** Its path in the repository, or the registry layer it is. */
  name: string;
  url: string;
  /** "hub": requests carry the Hub token (read when they are made; tokens are never stored with a plan). */
  auth: "hub" | "none";
  size: number;
  /** "sha256:<hex>". */
  sha256?: string;
  /** The git blob id, for a Hub file stored without LFS (no sha256 announced). */
  gitBlobSha1?: string;
  /** The Hub repository it is in (where the local Hugging Face cache would keep it). */
  hubRepo?: string;
}

/** What a pull will do, resolved before any weight is downloaded; stored with its job so a restart resumes it. */
export interface PullPlan {
  /** The name the model is stored under. */
  name: string;
  /** The weights, in load order (one file, or a split model's parts). */
  files: PlannedFile[];
  choice: PullChoice;
  warnings: string[];
  /** Quantize the downloaded float model to this type before storing it. */
  quantizeTo?: string;
  template?: string;
  system?: string;
  license?: string;
  parameters?: Record<string, unknown>;
}

export interface PlannerSettings {
  hub: HubSettings;
  ollamaRegistry: string;
  /** Where header probes are written (under AI_SERVER_HOME). */
  tempDir: string;
  estimate: FootprintEstimator;
  /** A verified local copy of these bytes (in the store or the Hugging Face cache), if there is one. */
  findLocal: (sha256: string, size: number, hubRepo?: string) => Promise<string | undefined>;
}

/**
 * Resolves a pull name to the files to fetch and why: for the Hub, the repository's commit, its GGUF files (or, for a
 * repository without any, those of its most downloaded GGUF quantization), the choice among them sized by the
 * scheduler's estimate on their fetched headers; for an Ollama registry, the manifest's layers. Every error a user
 * can act on (bad name, not found, gated, nothing fits) is thrown here, before anything is downloaded.
 */
export async function planPull(request: PullRequest, settings: PlannerSettings, signal?: AbortSignal, onNotice?: (message: string) => void): Promise<PullPlan> {
  const target = parsePullName(request.model, settings.ollamaRegistry, { insecure: request.insecure });
  if (target.source.kind === "huggingface") return planHubPull(target.name, target.source, request, settings, signal, onNotice);
  return planRegistryPull(target.name, target.source, settings, signal, onNotice);
}

async function planHubPull(
  name: string,
  source: HubSource,
  request: PullRequest,
  settings: PlannerSettings,
  signal: AbortSignal | undefined,
  onNotice: ((message: string) => void) | undefined,
): Promise<PullPlan> {
  const hub = await HubClient.open(settings.hub, onNotice);
  const asked = await hub.repo(source.repo, signal);
  const askedFiles = await hub.files(asked.id, asked.sha, signal);
  let found = { repo: asked, candidates: ggufCandidates(askedFiles) };
  let substitutedFrom: string | undefined;
  if (found.candidates.length === 0) {
    const quantized = await hub.ggufQuantizationsOf(asked.id, signal);
    const contents = askedFiles.map((f) => f.path).slice(0, 12).join(", ") + (askedFiles.length > 12 ? ", …" : "");
    if (quantized.length === 0) {
      throw new UpstreamNotFoundError(`"${asked.id}" has no GGUF file and no GGUF quantization of it was found on the Hugging Face Hub; it contains: ${contents || "no files"}`);
    }
    if (!request.substitute) {
      throw new SubstitutionRefusedError(`"${asked.id}" has no GGUF file (it contains: ${contents}); GGUF quantizations of it on the Hub: ${quantized.slice(0, 5).join(", ")}; pull one of them, or allow substitution`);
    }
    const substitute = await firstWithGguf(hub, quantized, signal);
    if (!substitute) throw new UpstreamNotFoundError(`"${asked.id}" has no GGUF file, and none of its GGUF quantizations listed on the Hub (${quantized.slice(0, 5).join(", ")}) has a GGUF file either`);
    found = substitute;
    substitutedFrom = asked.id;
    onNotice?.(`"${asked.id}" has no GGUF file: using ${found.repo.id}, its most downloaded GGUF quantization`);
  }
  const { repo, candidates } = found;
  const remote = (candidate: GgufCandidate): Promise<RemoteFile[]> =>
    Promise.all(
      candidate.files.map(async (file) => {
        const localPath = file.sha256 ? await settings.findLocal(`sha256:${file.sha256}`, file.size, repo.id) : undefined;
        return { url: hub.fileUrl(repo.id, repo.sha, file.path), headers: hub.authHeaders(), size: file.size, name: file.path, ...(localPath && { localPath }) };
      }),
    );
  const reference = referenceCandidate(candidates, source);
  await hub.checkAccess(repo.id, repo.sha, reference.file, signal);
  // Quantizations of one model differ in their weights' bytes, not in their context and buffers: one header sizes
  // them all, and the one chosen is then measured itself (and the choice made again if that changes it).
  const measured = new Map<GgufCandidate, Footprint>();
  const measure = async (candidate: GgufCandidate): Promise<Footprint> => {
    const footprint = await remoteFootprint(await remote(candidate), settings.estimate, settings.tempDir, signal);
    measured.set(candidate, footprint);
    return footprint;
  };
  const { budget, need: referenceNeed } = await measure(reference);
  const needOf = (candidate: GgufCandidate, size = candidate.size) => {
    const exact = measured.get(candidate);
    const [base, baseSize] = exact ? [exact.need, candidate.size] : [referenceNeed, reference.size];
    const pool = base.vram > 0 ? "vram" : "ram";
    return { ...base, [pool]: Math.max(0, base[pool] + size - baseSize) };
  };
  let choice = chooseFile({ repo: repo.id, candidates, tag: source.tag, budget, needOf });
  for (let round = 0; round < 3 && !measured.has(choice.candidate); round++) {
    await measure(choice.candidate);
    choice = chooseFile({ repo: repo.id, candidates, tag: source.tag, budget, needOf });
  }
  const chosen = choice.candidate;
  return {
    name,
    files: chosen.files.map((file) => plannedHubFile(hub, repo.id, repo.sha, file)),
    choice: {
      source: "huggingface",
      repo: repo.id,
      revision: repo.sha,
      requested: request.model,
      ...(substitutedFrom && { substitutedFrom }),
      file: chosen.file,
      files: chosen.files.map((f) => f.path),
      ...(chosen.quantization && { quantization: chosen.quantization }),
      ...(choice.quantizeTo && { quantizeTo: choice.quantizeTo }),
      size: chosen.size,
      reason: substitutedFrom ? `${choice.reason}; from ${repo.id}, a GGUF quantization of ${substitutedFrom}, which has no GGUF file` : choice.reason,
      alternatives: choice.alternatives,
      budget,
      estimate: choice.need,
    },
    warnings: choice.warnings,
    ...(choice.quantizeTo && { quantizeTo: choice.quantizeTo }),
  };
}

/** The first repository (in the order given) that has GGUF files. */
async function firstWithGguf(hub: HubClient, repos: readonly string[], signal?: AbortSignal): Promise<{ repo: Awaited<ReturnType<HubClient["repo"]>>; candidates: GgufCandidate[] } | undefined> {
  for (const id of repos.slice(0, 5)) {
    const repo = await hub.repo(id, signal);
    const candidates = ggufCandidates(await hub.files(repo.id, repo.sha, signal));
    if (candidates.length > 0) return { repo, candidates };
  }
  return undefined;
}

/**
 * The candidate whose header is fetched to size them all (quantizations of one model differ in their weights'
 * bytes, not in their context and buffers): the one the tag names, else Q4_K_M, else the first.
 */
function referenceCandidate(candidates: readonly GgufCandidate[], source: HubSource): GgufCandidate {
  const tag = typeof source.tag === "object" ? source.tag.text.toUpperCase() : "Q4_K_M";
  const named = candidates.find((c) => c.quantization === tag || path.posix.basename(c.file).toUpperCase().startsWith(tag));
  return named ?? candidates.find((c) => c.quantization === "Q4_K_M") ?? (candidates[0] as GgufCandidate);
}

function plannedHubFile(hub: HubClient, repo: string, revision: string, file: HubFile): PlannedFile {
  return {
    name: file.path,
    url: hub.fileUrl(repo, revision, file.path),
    auth: "hub",
    size: file.size,
    ...(file.sha256 ? { sha256: `sha256:${file.sha256}` } : { gitBlobSha1: file.gitOid }),
    hubRepo: repo,
  };
}

const LAYER = "application/vnd.ollama.image.";

async function planRegistryPull(
  name: string,
  source: RegistrySource,
  settings: PlannerSettings,
  signal: AbortSignal | undefined,
  onNotice: ((message: string) => void) | undefined,
): Promise<PullPlan> {
  const registry = new RegistryClient(onNotice);
  const layers = await registry.manifest(source, signal);
  const models = layers.filter((layer) => layer.mediaType === `${LAYER}model`);
  const model = models[0];
  const label = `${source.namespace === "library" ? "" : `${source.namespace}/`}${source.model}:${source.tag}`;
  if (!model) throw new UpstreamError(`the registry's manifest of "${label}" has no model layer`);
  const warnings: string[] = [];
  if (models.length > 1) warnings.push(`the manifest has ${models.length} model layers; only the first is used`);
  for (const layer of layers) {
    if (layer.mediaType === `${LAYER}projector`) warnings.push("the model's vision projector is not used: images are not supported yet");
    if (layer.mediaType === `${LAYER}adapter`) warnings.push("the model's LoRA adapter is not applied: adapters are not supported yet");
  }
  const text = async (kind: string): Promise<string | undefined> => {
    const layer = layers.find((l) => l.mediaType === `${LAYER}${kind}`);
    return layer ? registry.text(source, layer, signal) : undefined;
  };
  const [template, system, license, params] = [await text("template"), await text("system"), await text("license"), await text("params")];
  const localPath = await settings.findLocal(model.digest, model.size);
  const weights: RemoteFile = { url: registry.blobUrl(source, model.digest), headers: {}, size: model.size, name: "model.gguf", ...(localPath && { localPath }) };
  const measured = await remoteFootprint([weights], settings.estimate, settings.tempDir, signal);
  const fitsBudget = fits(measured.need, measured.budget);
  if (!fitsBudget) warnings.push(`the model needs about ${describe(measured.need)}, more than the memory budget of ${describe(measured.budget)}: it is downloaded anyway, but will not load unless the budget grows`);
  return {
    name,
    files: [plannedLayer(registry, source, model)],
    choice: {
      source: "ollama",
      repo: `${source.registry}/${source.namespace}/${source.model}:${source.tag}`,
      requested: label,
      file: model.digest,
      files: [model.digest],
      quantization: measured.quantization,
      size: model.size,
      reason: `the registry's model of ${label}: needs about ${describe(measured.need)}${fitsBudget ? `, within the budget of ${describe(measured.budget)}` : ""}`,
      alternatives: [],
      budget: measured.budget,
      estimate: measured.need,
    },
    warnings,
    ...(template !== undefined && { template }),
    ...(system !== undefined && { system }),
    ...(license !== undefined && { license }),
    ...(params !== undefined && { parameters: parseParams(params, label) }),
  };
}

function plannedLayer(registry: RegistryClient, source: RegistrySource, layer: RegistryLayer): PlannedFile {
  return { name: layer.digest, url: registry.blobUrl(source, layer.digest), auth: "none", size: layer.size, sha256: layer.digest };
}

function parseParams(text: string, label: string): Record<string, unknown> {
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed === "object" && parsed !== null && !Array.isArray(parsed)) return parsed as Record<string, unknown>;
  } catch {
    // reported below
  }
  throw new UpstreamError(`the params layer of "${label}" is not a JSON object`);
}
