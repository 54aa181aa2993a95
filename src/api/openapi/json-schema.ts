import { z } from "zod";

/**
 * zod → JSON Schema (draft 2020-12, the dialect of OpenAPI 3.1), the way the document needs it: the INPUT side of
 * every schema (what a client sends, before transforms and preprocessing), JSON `null` allowed wherever the schema
 * accepts it (`optional()` in src/api/validation.ts reads null as absent, and the SDKs send null), and a part that
 * JSON Schema cannot express becomes `{}` with a description instead of an exception.
 */

/** A JSON Schema object as this module writes it. */
export type JsonSchema = Record<string, unknown>;

/** Options for converting request schemas; `nullable: false` for query and path parameters (a URL has no null). */
interface ConvertOptions {
  nullable: boolean;
}

/**
 * Converts named schemas together, each becoming `#/components/schemas/<name>`; a schema used inside another (by
 * identity, e.g. the model options) is a `$ref` to its component instead of a copy.
 */
export function componentSchemas(named: Readonly<Record<string, z.ZodType>>): Record<string, JsonSchema> {
  const registry = z.registry<{ id: string }>();
  for (const [id, schema] of Object.entries(named)) registry.add(schema, { id });
  const { schemas } = z.toJSONSchema(registry, { ...converterOptions({ nullable: true }), uri: (id) => `#/components/schemas/${id}` });
  return Object.fromEntries(Object.entries(schemas).map(([id, schema]) => [id, withoutRootKeywords(schema as JsonSchema)]));
}

/** One schema on its own (query and path parameters). */
export function standaloneSchema(schema: z.ZodType, options: ConvertOptions = { nullable: true }): JsonSchema {
  return withoutRootKeywords(z.toJSONSchema(schema, converterOptions(options)) as JsonSchema);
}

function converterOptions({ nullable }: ConvertOptions) {
  return {
    target: "draft-2020-12",
    io: "input",
    unrepresentable: ({ message }: { message: string }) => ({ description: `Any JSON value here: the server's check cannot be written as JSON Schema (${message}).` }),
    override: ({ zodSchema, jsonSchema }: { zodSchema: z.core.$ZodType; jsonSchema: JsonSchema }) => {
      if (nullable && !allowsNull(jsonSchema) && acceptsNull(zodSchema)) makeNullable(jsonSchema);
    },
  } as const;
}

/** `$schema` and `$id` belong to a standalone document, not to a Schema Object inside an OpenAPI document. */
function withoutRootKeywords(schema: JsonSchema): JsonSchema {
  const { $schema: _dialect, $id: _id, ...rest } = schema;
  return rest;
}

/** Whether the zod schema itself takes JSON null (it is the validator, so it decides). */
function acceptsNull(schema: z.core.$ZodType): boolean {
  try {
    return z.safeParse(schema, null).success;
  } catch {
    return false; // an asynchronous check cannot run here; document the schema as it is
  }
}

/** Whether the JSON Schema already admits null (conservatively: an unconstrained schema, a null type or branch). */
function allowsNull(schema: JsonSchema): boolean {
  const keys = Object.keys(schema).filter((key) => !ANNOTATIONS.has(key));
  if (keys.length === 0) return true;
  const type = schema.type;
  if (type === "null" || (Array.isArray(type) && type.includes("null"))) return true;
  const branches = [schema.anyOf, schema.oneOf].filter(Array.isArray).flat() as JsonSchema[];
  return branches.some(allowsNull);
}

const ANNOTATIONS = new Set(["description", "title", "default", "examples", "deprecated", "readOnly", "writeOnly"]);

/** `S` → `anyOf: [S, {type: "null"}]` in place (zod folds it to `type: [t, "null"]` when S is a bare type). */
function makeNullable(schema: JsonSchema): void {
  const annotations: JsonSchema = {};
  const constraints: JsonSchema = {};
  for (const [key, value] of Object.entries(schema)) (ANNOTATIONS.has(key) ? annotations : constraints)[key] = value;
  for (const key of Object.keys(schema)) delete schema[key];
  // A bare union gains a branch rather than a level: anyOf [A, B] → anyOf [A, B, null].
  const branches = Object.keys(constraints).length === 1 && Array.isArray(constraints.anyOf) ? (constraints.anyOf as JsonSchema[]) : [constraints];
  Object.assign(schema, annotations, { anyOf: [...branches, { type: "null" }] });
}
