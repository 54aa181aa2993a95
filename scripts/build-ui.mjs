#!/usr/bin/env node
// Builds the web dashboard (ui/) into dist/ui: the page, one stylesheet, the shell's script and one chunk per page
// (each page's module loads when it is first opened), minified. Run by `npm run build` (so by `npm ci`, `npm start`);
// `--out <dir>` writes elsewhere (the browser tests).
import { copyFile, mkdir, rm } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

/**
 * Bundles ui/src/main.tsx and ui/index.html into `outDir`: index.html, assets/app.js (the shell), assets/app.css
 * (every page's styles: a few kilobytes, so one file), and assets/<page>-<hash>.js / chunk-<hash>.js, the pages and
 * the code they share, loaded by app.js with import(). Every file lies directly in assets/ under a plain name, the
 * only files the server serves there. Answers esbuild's metafile of the files kept.
 */
export async function buildUi(outDir = path.join(root, "dist", "ui")) {
  const assets = path.join(outDir, "assets");
  await rm(outDir, { recursive: true, force: true });
  await mkdir(assets, { recursive: true });
  const result = await build({
    entryPoints: { app: path.join(root, "ui", "src", "main.tsx") },
    outdir: assets,
    bundle: true,
    splitting: true,
    chunkNames: "[name]-[hash]",
    minify: true,
    format: "esm",
    target: ["es2022"],
    jsx: "automatic",
    jsxImportSource: "preact",
    legalComments: "none",
    logLevel: "warning",
    metafile: true,
  });
  // esbuild puts the styles of the lazily loaded pages in app.css too, and also writes each page's own copy, which
  // nothing loads: only app.css is kept.
  const metafile = result.metafile;
  for (const [output, details] of Object.entries(metafile.outputs)) {
    if (output.endsWith(".css") && path.basename(output) !== "app.css") {
      await rm(path.resolve(output));
      delete metafile.outputs[output];
    } else if (details.cssBundle && path.basename(details.cssBundle) !== "app.css") {
      delete details.cssBundle;
    }
  }
  await copyFile(path.join(root, "ui", "index.html"), path.join(outDir, "index.html"));
  return metafile;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const at = process.argv.indexOf("--out");
  await buildUi(at > 0 ? path.resolve(process.argv[at + 1]) : undefined);
}
