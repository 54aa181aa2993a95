import type { FastifyReply, FastifyRequest } from "fastify";
import type { Services } from "../../services.js";
import { InvalidRequestError } from "../../domain/errors.js";
import { normalizeModelName } from "../../domain/model-name.js";
import { ENGINE_NAMES } from "../../engine/engine.js";
import { EventStream } from "../../engine/event-stream.js";
import type { ModelRecord } from "../../domain/model.js";
import type { QuantizeProgress } from "../../quantize/quantizer.js";
import { clientSignal } from "../../server/abort.js";
import { parseDigest } from "../../store/blob-store.js";
import type { CreateModelInput, ModelStore } from "../../store/model-store.js";
import { respond } from "./ndjson.js";
import type { UpstreamConfig } from "../../domain/upstream.js";
import { toUpstreamConfig } from "./upstream-schema.js";
import { createSchema, parseBody, parseOptions, requestedModel, type CreateBody } from "./schemas.js";

interface Status {
  status: string;
  /** While quantizing: Ollama's placeholder digest, and the tensors written of all. */
  digest?: string;
  total?: number;
  completed?: number;
}

/** The digest Ollama's quantization progress lines carry (there is no layer yet). */
export const QUANTIZING_DIGEST = "0000000000000000000";

/**
 * POST /api/create: names a model made from an uploaded GGUF blob (`files`) or from an existing model (`from`),
 * with an optional template, system prompt, license and parameters. The work is done (and a bad GGUF refused with
 * 400, leaving the store unchanged) before the first status line, then the steps are reported.
 *
 * With `quantize` (an F16, BF16 or F32 source), the weights are quantized first, reported as they go (Ollama's
 * `quantizing F16 model to Q4_K_M` lines, counting tensors); a quantization made before is reused. A client that goes
 * away stops it. The uploaded source is then removed unless a model uses it (Ollama prunes such blobs too).
 *
 * With `upstream` (ours), the model has no weights: it is served by remote OpenAI-compatible endpoints
 * (upstream-schema.ts says what is accepted); `from` such a model copies its endpoints.
 */
export async function createModel(services: Services, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const body = parseBody(createSchema, request.body);
  const name = normalizeModelName(requestedModel(body));
  if (body.adapters && Object.keys(body.adapters).length > 0) throw new InvalidRequestError("adapters are not supported");
  if (body.modelfile !== undefined) throw new InvalidRequestError('modelfile is no longer supported: send "from" or "files"');
  if (body.parameters) {
    parseOptions(body.parameters);
    checkFlat(body.parameters);
  }
  const engine = body.parameters?.engine;
  if (engine !== undefined && !ENGINE_NAMES.some((known) => known === engine)) {
    throw new InvalidRequestError(`parameters.engine: expected ${ENGINE_NAMES.map((known) => `"${known}"`).join(" or ")}, got ${JSON.stringify(engine)}`);
  }
  const upstream = upstreamSource(services.store, body);
  if (upstream) return respond(reply, body.stream ?? true, upstreamCreateSteps(services.store, name, body, upstream), (all) => all[all.length - 1] ?? { status: "success" });
  const steps = body.quantize ? quantizedCreateSteps(services, name, body, body.quantize, clientSignal(reply)) : createSteps(services.store, name, body);
  return respond(reply, body.stream ?? true, steps, (all) => all[all.length - 1] ?? { status: "success" });
}

async function* createSteps(store: ModelStore, name: string, body: CreateBody): AsyncGenerator<Status> {
  const source = resolveSource(store, body);
  await store.create(createInput(name, body, source, source.digest));
  if (!source.base) yield { status: "parsing GGUF" };
  yield { status: `using existing layer ${source.digest}` };
  yield { status: "writing manifest" };
  yield { status: "success" };
}

/**
 * Quantizes the source, then creates the model from the result. Nothing is reported before the tool starts its first
 * tensor, so a refusal (400), a missing tool or too little disk space is a plain HTTP error.
 */
async function* quantizedCreateSteps(services: Services, name: string, body: CreateBody, type: string, signal: AbortSignal): AsyncGenerator<Status> {
  const { store, quantizer } = services;
  const source = resolveSource(store, body);
  const plan = await quantizer.plan(source.digest, type);
  if (plan.refusal !== undefined) throw new InvalidRequestError(plan.refusal);
  const status = `quantizing ${plan.sourceLevel} model to ${plan.type}`;
  const progress = new EventStream<QuantizeProgress>();
  const running = quantizer.quantize(source.digest, plan.type, { signal, onProgress: (step) => progress.push(step) });
  running.then(
    () => progress.end(),
    () => progress.end(),
  );
  let first = true;
  for await (const step of progress) {
    if (first && !source.base) yield { status: "parsing GGUF" };
    first = false;
    yield { status, digest: QUANTIZING_DIGEST, total: step.total, completed: step.completed };
  }
  const result = await running;
  await store.create(createInput(name, body, source, result.digest));
  if (result.digest !== source.digest && !store.references(source.digest) && !quantizer.busy(source.digest)) await store.blobs.remove(source.digest);
  if (result.cached && !source.base) yield { status: "parsing GGUF" };
  yield { status: `${result.cached ? "using existing" : "creating new"} layer ${result.digest}` };
  yield { status: "writing manifest" };
  yield { status: "success" };
}

/**
 * PARAMETER values are flat, as a Modelfile writes them: a string, a number, a boolean, or a list of them (a nested
 * object would be stored as is, and one nested deeply enough could not even be written).
 */
function checkFlat(parameters: Record<string, unknown>): void {
  const scalar = (value: unknown): boolean => value === null || ["string", "number", "boolean"].includes(typeof value);
  for (const [key, value] of Object.entries(parameters)) {
    if (!(Array.isArray(value) ? value.every(scalar) : scalar(value))) throw new InvalidRequestError(`parameters.${key}: expected a string, a number, a boolean or a list of them`);
  }
}

/**
 * A model served by remote endpoints: `upstream` itself (alone: it has no weights, so no `files`, `from`, `quantize`
 * or `engine`), or `from` a model that is one (its endpoints, with this request's fields on top).
 */
function upstreamSource(store: ModelStore, body: CreateBody): { config: UpstreamConfig; base?: ModelRecord } | undefined {
  if (body.upstream !== undefined) {
    const other = (["files", "from", "quantize", "adapters"] as const).find((field) => body[field] !== undefined);
    if (other !== undefined) throw new InvalidRequestError(`upstream: a model served by upstream endpoints has no weights, so it cannot be combined with ${other}`);
    if (body.parameters?.engine !== undefined) throw new InvalidRequestError("parameters.engine: a model served by upstream endpoints runs on them, not on a local engine");
    return { config: toUpstreamConfig(body.upstream) };
  }
  const base = body.from !== undefined && Object.keys(body.files ?? {}).length === 0 ? store.get(body.from) : undefined;
  if (!base?.upstream) return undefined;
  if (body.quantize !== undefined) throw new InvalidRequestError(`quantize: "${base.name}" is served by upstream endpoints: it has no weights to quantize`);
  return { config: base.upstream, base };
}

async function* upstreamCreateSteps(store: ModelStore, name: string, body: CreateBody, source: { config: UpstreamConfig; base?: ModelRecord }): AsyncGenerator<Status> {
  const { modelDigest: _none, ...fields } = createInput(name, body, source, "");
  await store.createUpstream({ ...fields, upstream: source.config });
  yield { status: `using ${source.config.endpoints.length} upstream endpoint${source.config.endpoints.length === 1 ? "" : "s"}` };
  yield { status: "writing manifest" };
  yield { status: "success" };
}

/** The new model: `modelDigest` (the source's weights, or their quantization), with what the request and base say. */
function createInput(name: string, body: CreateBody, source: { base?: ModelRecord }, modelDigest: string): CreateModelInput {
  const license = Array.isArray(body.license) ? body.license.join("\n") : body.license;
  const template = body.template ?? source.base?.template;
  const system = body.system ?? source.base?.system;
  const licenseText = license ?? source.base?.license;
  return {
    name,
    modelDigest,
    parameters: { ...source.base?.parameters, ...body.parameters },
    ...(template !== undefined && { template }),
    ...(system !== undefined && { system }),
    ...(licenseText !== undefined && { license: licenseText }),
  };
}

/** The weights the new model uses: the one GGUF in `files`, else those of the model named by `from`. */
function resolveSource(store: ModelStore, body: CreateBody): { digest: string; base?: ModelRecord } {
  const files = Object.entries(body.files ?? {});
  if (files.length > 0) {
    const ggufs = files.filter(([file]) => file.toLowerCase().endsWith(".gguf"));
    if (ggufs.length > 1) throw new InvalidRequestError("models made of several GGUF files are not supported");
    if (ggufs.length === 0 && files.length > 1) throw new InvalidRequestError("only GGUF models are supported");
    const [, digest] = ggufs[0] ?? files[0] ?? [];
    return { digest: parseDigest(digest ?? "") };
  }
  if (body.from) {
    const base = store.require(body.from);
    return { digest: parseDigest(base.modelDigest), base };
  }
  throw new InvalidRequestError("neither 'from' or 'files' was specified");
}
