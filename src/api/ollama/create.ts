import type { FastifyReply, FastifyRequest } from "fastify";
import type { Services } from "../../services.js";
import { InvalidRequestError } from "../../domain/errors.js";
import { normalizeModelName } from "../../domain/model-name.js";
import { ENGINE_NAMES } from "../../engine/engine.js";
import type { ModelRecord } from "../../domain/model.js";
import { parseDigest } from "../../store/blob-store.js";
import type { ModelStore } from "../../store/model-store.js";
import { respond } from "./ndjson.js";
import { createSchema, parseBody, parseOptions, requestedModel, type CreateBody } from "./schemas.js";

interface Status {
  status: string;
}

/**
 * POST /api/create: names a model made from an uploaded GGUF blob (`files`) or from an existing model (`from`),
 * with an optional template, system prompt, license and parameters. The work is done (and a bad GGUF refused with
 * 400, leaving the store unchanged) before the first status line, then the steps are reported.
 */
export async function createModel(services: Services, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const body = parseBody(createSchema, request.body);
  const name = normalizeModelName(requestedModel(body));
  if (body.quantize) throw new InvalidRequestError("quantize is not supported: create from a GGUF file that is already quantized");
  if (body.adapters && Object.keys(body.adapters).length > 0) throw new InvalidRequestError("adapters are not supported");
  if (body.modelfile !== undefined) throw new InvalidRequestError('modelfile is no longer supported: send "from" or "files"');
  if (body.parameters) parseOptions(body.parameters);
  const engine = body.parameters?.engine;
  if (engine !== undefined && !ENGINE_NAMES.some((known) => known === engine)) {
    throw new InvalidRequestError(`parameters.engine: expected ${ENGINE_NAMES.map((known) => `"${known}"`).join(" or ")}, got ${JSON.stringify(engine)}`);
  }
  return respond(reply, body.stream ?? true, createSteps(services.store, name, body), (all) => all[all.length - 1] ?? { status: "success" });
}

async function* createSteps(store: ModelStore, name: string, body: CreateBody): AsyncGenerator<Status> {
  const source = resolveSource(store, body);
  const license = Array.isArray(body.license) ? body.license.join("\n") : body.license;
  const template = body.template ?? source.base?.template;
  const system = body.system ?? source.base?.system;
  const licenseText = license ?? source.base?.license;
  await store.create({
    name,
    modelDigest: source.digest,
    parameters: { ...source.base?.parameters, ...body.parameters },
    ...(template !== undefined && { template }),
    ...(system !== undefined && { system }),
    ...(licenseText !== undefined && { license: licenseText }),
  });
  if (!source.base) yield { status: "parsing GGUF" };
  yield { status: `using existing layer ${source.digest}` };
  yield { status: "writing manifest" };
  yield { status: "success" };
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
