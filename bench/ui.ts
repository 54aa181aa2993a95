/**
 * The dashboard part of `npm run bench` (issue 19: the bundle's size and the time from navigation to a usable page on
 * loopback), alone: `node --import tsx bench/ui.ts` (or BENCH_UI_ONLY=1 npm run bench; BENCH_UI=0 skips it).
 *
 * 1. Size: ui/ built as `npm run build` builds it (scripts/build-ui.mjs, into a temp folder), each file raw and gzipped
 *    (level 9, as the server sends it), and what opening each page first needs: index.html, app.css, app.js with the
 *    chunks it imports, and that page's chunk with the chunks it imports.
 * 2. Time to a usable page: the real server in this process with a few models in its store, the distribution's
 *    Chromium (headless) on loopback; from `page.goto` until /ui#/models shows `model-list`, and until /ui#/chat has
 *    `chat-input` and the model picker filled and enabled. BENCH_UI_REPS cold loads each (default 10; a fresh browser
 *    context each time: no cache, no storage), after one untimed load that warms the server's file cache; median
 *    (min–max). Without Chromium this part is skipped, saying so.
 */
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { setTimeout } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import type { Browser } from "playwright-core";
import { loadConfig } from "../src/config/load.js";
import { writeScriptedModel } from "../test/fixtures/models.js";
import { chromiumPath, launchBrowser, noBrowser } from "../test/helpers/browser.js";
// @ts-expect-error: a plain ES module of the build, without types
import { buildUi } from "../scripts/build-ui.mjs";
import { serveApp, type ServedApp } from "./served-app.js";

/** The parts of esbuild's metafile read here (output path → its entry point and imports). */
interface Metafile {
  outputs: Record<string, { entryPoint?: string; imports: Array<{ path: string; kind: string }> }>;
}

export interface UiBenchOptions {
  reps: number;
  log: (message: string) => void;
}

/** The options from BENCH_UI_* . */
export function uiBenchOptions(env: NodeJS.ProcessEnv, log: (message: string) => void): UiBenchOptions {
  const n = Number(env.BENCH_UI_REPS);
  return { reps: Number.isInteger(n) && n > 0 ? n : 10, log };
}

/** The pages timed, and what shows each one usable. */
const TIMED = [
  { route: "models", until: "`model-list` visible", selectors: ['[data-testid="model-list"]'] },
  { route: "chat", until: "`chat-input` enabled, the model picker filled", selectors: ['[data-testid="chat-model-select"]:enabled', '[data-testid="chat-input"]:enabled'] },
] as const;

const PAGES = ["models", "running", "chat", "admin"] as const;

/** Builds the dashboard, measures it, and answers the markdown report. */
export async function uiBench(options: UiBenchOptions): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "ai-server-bench-ui-"));
  try {
    const metafile = (await buildUi(dir)) as Metafile;
    const sizes = await fileSizes(dir);
    const lines = ["## Dashboard (/ui): bundle size and time to a usable page", "", ...sizeReport(sizes, metafile, dir), ""];
    if (noBrowser) {
      lines.push(`Time to a usable page: skipped, ${noBrowser}.`, "");
      return lines.join("\n");
    }
    lines.push(...(await timingReport(dir, options)), "");
    return lines.join("\n");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Every file of the build (relative path → raw and gzipped bytes). */
async function fileSizes(dir: string): Promise<Map<string, { raw: number; gzip: number }>> {
  const sizes = new Map<string, { raw: number; gzip: number }>();
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const file = path.join(entry.parentPath, entry.name);
    const body = await readFile(file);
    sizes.set(path.relative(dir, file).split(path.sep).join("/"), { raw: body.length, gzip: gzipSync(body, { level: 9 }).length });
  }
  return sizes;
}

/** The files opening `page` first needs (relative to the build's folder): the page, styles, app.js and the page's chunk, each with what it imports. */
function firstLoad(metafile: Metafile, dir: string, page: string): string[] {
  const outputs = Object.entries(metafile.outputs);
  const relative = (output: string): string => path.relative(dir, path.resolve(output)).split(path.sep).join("/");
  const entry = (suffix: string): string => {
    const found = outputs.find(([, o]) => o.entryPoint?.replaceAll("\\", "/").endsWith(suffix));
    if (!found) throw new Error(`no output for ${suffix} in the build`);
    return found[0];
  };
  const files = new Set<string>();
  const add = (output: string): void => {
    if (files.has(output)) return;
    files.add(output);
    for (const imported of metafile.outputs[output]?.imports ?? []) if (imported.kind === "import-statement") add(imported.path);
  };
  add(entry("ui/src/main.tsx"));
  add(entry(`ui/src/pages/${page}/index.tsx`));
  return ["index.html", "assets/app.css", ...[...files].map(relative)];
}

const kb = (bytes: number): string => (bytes / 1024).toFixed(1);

function sizeReport(sizes: Map<string, { raw: number; gzip: number }>, metafile: Metafile, dir: string): string[] {
  const all = [...sizes.entries()].sort(([, a], [, b]) => b.gzip - a.gzip);
  const sum = (names: string[], key: "raw" | "gzip"): number => names.reduce((total, name) => total + (sizes.get(name)?.[key] ?? 0), 0);
  const names = all.map(([name]) => name);
  const lines = [
    "Every file of the build (dist/ui), largest first; gzip -9 is what the server sends a browser that accepts gzip:",
    "",
    "| file | KiB | KiB gzip |",
    "|---|---:|---:|",
    ...all.map(([name, size]) => `| ${name} | ${kb(size.raw)} | ${kb(size.gzip)} |`),
    `| **all ${all.length} files** | ${kb(sum(names, "raw"))} | ${kb(sum(names, "gzip"))} |`,
    "",
    "What opening a page first loads (the page, app.css, app.js and that page's chunk, each with the chunks it imports):",
    "",
    "| first page opened | files | KiB | KiB gzip |",
    "|---|---:|---:|---:|",
  ];
  for (const page of PAGES) {
    const files = firstLoad(metafile, dir, page);
    lines.push(`| /ui#/${page} | ${files.length} | ${kb(sum(files, "raw"))} | ${kb(sum(files, "gzip"))} |`);
  }
  return lines;
}

/**
 * A script run in the page before its own (it needs no eval, so the page's CSP allows it): records in
 * `window.__usableAt` the page's clock (ms since the navigation started) at the first DOM change after which every
 * selector matches an element that is laid out. Playwright's own waits poll at growing intervals, too coarse to time.
 */
function usableAtScript(selectors: readonly string[]): string {
  return `(() => {
    const selectors = ${JSON.stringify(selectors)};
    const usable = () => selectors.every((selector) => { const element = document.querySelector(selector); return element !== null && element.getClientRects().length > 0; });
    const observer = new MutationObserver(() => {
      if (window.__usableAt === undefined && usable()) { window.__usableAt = performance.now(); observer.disconnect(); }
    });
    observer.observe(document, { childList: true, subtree: true, attributes: true });
  })();`;
}

async function timingReport(dir: string, options: UiBenchOptions): Promise<string[]> {
  const { reps, log } = options;
  const modelDir = await mkdtemp(path.join(os.tmpdir(), "ai-server-bench-ui-model-"));
  let browser: Browser | undefined;
  let served: ServedApp | undefined;
  try {
    const config = loadConfig(process.env, { ...(!process.env.AI_SERVER_LOG_LEVEL && { logLevel: "warn" }), uiDir: dir });
    const modelFile = path.join(modelDir, "scripted.gguf");
    await writeScriptedModel(modelFile, { reply: "Hello from the dashboard bench.", name: "scripted" });
    served = await serveApp(config, async (store) => {
      const digest = (await store.blobs.importFile(modelFile)).digest;
      for (const name of ["alpha", "bravo", "charlie", "delta", "echo"]) await store.create({ name: `${name}:latest`, modelDigest: digest });
    });
    browser = await launchBrowser();
    const base = `http://127.0.0.1:${served.port}/ui`;
    const rows: string[] = [];
    for (const { route, until, selectors } of TIMED) {
      const load = async (): Promise<{ ms: number; requests: number }> => {
        const context = await browser!.newContext();
        await context.addInitScript(usableAtScript(selectors));
        const page = await context.newPage();
        let requests = 0;
        page.on("request", () => void requests++);
        await page.goto(`${base}#/${route}`, { waitUntil: "commit" });
        for (const selector of selectors) await page.locator(selector).waitFor({ state: "visible" });
        let ms: number | undefined;
        for (let tries = 0; (ms = (await page.evaluate("window.__usableAt")) as number | undefined) === undefined; tries++) {
          if (tries === 200) throw new Error(`/ui#/${route} became usable without a DOM change that showed it`);
          await setTimeout(5);
        }
        await context.close();
        return { ms, requests };
      };
      await load(); // warms the server's file cache and the browser process, not timed
      const times: number[] = [];
      let requests = 0;
      for (let i = 0; i < reps; i++) {
        const result = await load();
        times.push(result.ms);
        requests = result.requests;
      }
      const sorted = [...times].sort((a, b) => a - b);
      const median = sorted.length % 2 === 1 ? sorted[(sorted.length - 1) / 2]! : (sorted[sorted.length / 2 - 1]! + sorted[sorted.length / 2]!) / 2;
      log(`ui: /ui#/${route} median ${median.toFixed(1)} ms over ${reps} cold loads`);
      rows.push(`| /ui#/${route} | ${until} | ${requests} | ${median.toFixed(1)} | ${sorted[0]!.toFixed(1)}–${sorted.at(-1)!.toFixed(1)} |`);
    }
    const cpu = os.cpus()[0]?.model ?? "unknown CPU";
    return [
      `Time from navigation to a usable page, Chromium ${browser.version()} headless (${chromiumPath()}) on loopback, ${cpu}, ` +
        `${os.availableParallelism()} cores; ${reps} cold loads each (a fresh browser context: no cache, no storage), ` +
        "after one untimed load; 5 models in the store; ms from the start of the navigation (the page's own clock) to the " +
        "first moment the page is usable:",
      "",
      "| page | usable when | requests | median ms | min–max ms |",
      "|---|---|---:|---:|---:|",
      ...rows,
    ];
  } finally {
    await browser?.close();
    await served?.close();
    await rm(modelDir, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  console.log(await uiBench(uiBenchOptions(process.env, (message) => void process.stderr.write(`${message}\n`))));
}
