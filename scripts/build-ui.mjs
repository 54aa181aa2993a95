#!/usr/bin/env node
// Builds the web dashboard (ui/) into dist/ui: one bundled, minified script and stylesheet, and the page.
// Run by `npm run build` (so by `npm ci`, `npm start`); `--out <dir>` writes elsewhere (the browser tests).
import { copyFile, mkdir, rm } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

/** Bundles ui/src/main.tsx and ui/index.html into `outDir` (assets/app.js, assets/app.css, index.html). */
export async function buildUi(outDir = path.join(root, "dist", "ui")) {
  await rm(outDir, { recursive: true, force: true });
  await mkdir(path.join(outDir, "assets"), { recursive: true });
  const result = await build({
    entryPoints: { app: path.join(root, "ui", "src", "main.tsx") },
    outdir: path.join(outDir, "assets"),
    bundle: true,
    minify: true,
    format: "esm",
    target: ["es2022"],
    jsx: "automatic",
    jsxImportSource: "preact",
    legalComments: "none",
    logLevel: "warning",
    metafile: true,
  });
  await copyFile(path.join(root, "ui", "index.html"), path.join(outDir, "index.html"));
  return result.metafile;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const at = process.argv.indexOf("--out");
  await buildUi(at > 0 ? path.resolve(process.argv[at + 1]) : undefined);
}
