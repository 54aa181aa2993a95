import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { test } from "node:test";
import * as catalog from "../../src/domain/errors.js";
import { AppError } from "../../src/domain/errors.js";

/** Every concrete error class of the catalog, instantiated (constructors take at most two strings). */
function catalogErrors(): AppError[] {
  return Object.values(catalog)
    .filter((value) => typeof value === "function" && value.prototype instanceof AppError)
    .map((ErrorClass) => Reflect.construct(ErrorClass, ["x", "y"]) as AppError);
}

async function documented(): Promise<Map<string, string>> {
  const text = await readFile(new URL("../../docs/errors.md", import.meta.url), "utf8");
  const sections = new Map<string, string>();
  for (const [, code, body] of text.matchAll(/^## (\S+)\n([\s\S]*?)(?=^## |$(?![\s\S]))/gm)) sections.set(code ?? "", body ?? "");
  return sections;
}

test("every error code has a section in docs/errors.md with its HTTP status and class", async () => {
  const docs = await documented();
  for (const error of catalogErrors()) {
    const section = docs.get(error.code);
    assert.ok(section, `docs/errors.md lacks a "## ${error.code}" section`);
    assert.match(section, new RegExp(`HTTP ${error.status} · \`${error.name}\``), `section ${error.code} must say "HTTP ${error.status} · \`${error.name}\`"`);
  }
});

test("docs/errors.md documents no code the catalog lacks", async () => {
  const codes = new Set(catalogErrors().map((e) => e.code));
  for (const code of (await documented()).keys()) assert.ok(codes.has(code), `docs/errors.md documents "${code}", which src/domain/errors.ts does not define`);
});

test("codes are unique", () => {
  const codes = catalogErrors().map((e) => e.code);
  assert.equal(new Set(codes).size, codes.length);
});

test("toAppError keeps AppErrors and wraps anything else as internal_error with the cause", () => {
  const known = new catalog.InvalidRequestError("bad");
  assert.equal(catalog.toAppError(known), known);
  const cause = new TypeError("boom");
  const wrapped = catalog.toAppError(cause);
  assert.equal(wrapped.code, "internal_error");
  assert.equal(wrapped.message, "boom");
  assert.equal(wrapped.cause, cause);
});
