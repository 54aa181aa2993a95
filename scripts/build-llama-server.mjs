#!/usr/bin/env node
// Builds llama.cpp's `llama-server` from the exact llama.cpp source that node-llama-cpp ships
// (node_modules/node-llama-cpp/llama/gitRelease.bundle) with node-llama-cpp's patches and this project's
// (scripts/llama-server-patches: fixes to tools/server only; a build made without the current ones is rebuilt),
// for use as a benchmark reference and as an out-of-process engine, and beside it llama.cpp's quantize tool
// (`llama-quantize`, always: the server's local quantization runs it). Plain Node ESM, Node builtins only; needs git,
// g++ (and cmake for --method=cmake).
//
// Usage: node scripts/build-llama-server.mjs [--method=auto|prebuilt|cmake] [--with-bench] [--force] [--no-build]
//                                             [--jobs=N] [--keep-work] [--optional]
//   --with-bench  also build llama-bench and llama-batched-bench into the same directory (~10 s more with prebuilt)
//   --force       rebuild even if a finished build is there
//   --no-build    only print the path of a finished build (one lacking llama-quantize counts); exit 1 if there is none
//   --optional    what `npm ci` runs (the package's prepare script): the prebuilt method only (a few minutes at most),
//                 and a failure is a warning with exit code 0, because the server then uses its in-process engine.
//                 AI_SERVER_SKIP_LLAMA_SERVER_BUILD=1 skips it.
//
// Methods:
//   prebuilt (default via auto) - compiles only tools/server, tools/mtmd, vendored cpp-httplib/hash and the
//             (empty) web UI asset table with g++, and links them against node-llama-cpp's prebuilt shared
//             libraries (libllama-common, libllama, libggml, libggml-base), which are copied next to the binary
//             together with the dynamically loaded libggml-cpu-*.so variants. ~70 files, ~2 min on 2 cores.
//             The decode path (libllama/ggml) is byte-for-byte the one node-llama-cpp runs.
//   cmake   - full CMake build (Release, GGML_NATIVE=ON, static libs) of the llama-server target only.
//             ~330 build steps (6-8 min on 2 cores); produces a single self-contained binary. On an AMX CPU with
//             GCC 12 it must be built without AMX (see amxWorkaroundFlags), and its ggml then decodes about 2x
//             slower than node-llama-cpp's prebuilt sapphirerapids variant, so it is not a like-for-like reference.
//   auto    - prebuilt, falling back to cmake when the prebuilt method cannot be used.
//
// A finished build that lacks one of the tools asked for (llama-quantize, or the bench tools with --with-bench; a build
// made before they were added) is completed on the next run: the prebuilt method compiles and links only the missing
// tools (llama-quantize: 2 files, ~3 s on 2 cores) into a copy of the build that replaces it, the cmake method rebuilds.
//
// Output: the finished build lives in $AI_SERVER_LLAMA_SERVER_DIR if set, else
// <repo>/.cache/llama-server/<llama.cpp tag>[-<variant>][-cmake]/, with build-info.json describing it.
// The binary runs as is: the prebuilt build has RUNPATH=$ORIGIN and its libraries beside it (ggml also loads
// its CPU backend variants from the executable's directory); the cmake build is statically linked. The caller
// sets no LD_LIBRARY_PATH. (The CUDA variant additionally needs the CUDA runtime libraries on the system path.)
//
// Progress goes to stderr; on success the absolute binary path is the only line on stdout. Exit code 1 with a
// message on failure. Builds happen in <dir>.work/ and <dir>.tmp-<pid>/, and the finished tree is renamed
// into place, so an interrupted build never looks finished; a later run resumes (compiled objects are reused).
//
// Environment:
//   AI_SERVER_LLAMA_SERVER_DIR      final build directory (overrides the default above)
//   AI_SERVER_LLAMA_SERVER_METHOD   auto | prebuilt | cmake (the --method flag wins)
//   AI_SERVER_LLAMA_SERVER_VARIANT  node-llama-cpp prebuilt package for the prebuilt method, e.g. linux-x64 (default,
//                                   CPU), linux-x64-cuda, linux-x64-vulkan
//   AI_SERVER_BUILD_JOBS            parallel compile jobs (default: number of CPUs)
//   AI_SERVER_BUILD_NICE            nice level for compilers (default 19; 0 disables)
//   AI_SERVER_LLAMA_SERVER_KEEP_WORK=1  keep <dir>.work/ (source clone, objects) after a successful build
//   AI_SERVER_LLAMA_SERVER_WITH_BENCH=1 same as --with-bench
//   AI_SERVER_LLAMA_SERVER_CMAKE_FLAGS  extra cmake -D flags for the cmake method, e.g. "-DGGML_OPENMP=OFF" (the
//                                   cmake method otherwise uses llama.cpp's defaults: OpenMP on, -march=native)
//
// Running it: `llama-server -m model.gguf --host 127.0.0.1 --port N` or `--host /path/to/x.sock` (a --host ending in
// .sock binds a UNIX socket; the server does not remove the socket file on exit and fails to bind if it exists, so
// delete a stale one first). The web UI asset table is empty (no network to fetch the prebuilt UI): "/" serves
// nothing, the API is complete; pass --no-webui.

import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const LOG_PREFIX = '[build-llama-server]';
const BUILD_INFO = 'build-info.json';
const BUILD_INFO_SCHEMA = 1;

class BuildError extends Error {}

function log(msg) {
  process.stderr.write(`${LOG_PREFIX} ${msg}\n`);
}

function fail(msg) {
  throw new BuildError(msg);
}

// ---------------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------------

function parseArgs(argv) {
  const opts = {
    method: process.env.AI_SERVER_LLAMA_SERVER_METHOD || 'auto',
    force: false,
    noBuild: false,
    jobs: Number(process.env.AI_SERVER_BUILD_JOBS) || (os.availableParallelism?.() ?? os.cpus().length) || 1,
    nice: process.env.AI_SERVER_BUILD_NICE === undefined ? 19 : Number(process.env.AI_SERVER_BUILD_NICE),
    variant: process.env.AI_SERVER_LLAMA_SERVER_VARIANT || `${process.platform}-${process.arch}`,
    keepWork: process.env.AI_SERVER_LLAMA_SERVER_KEEP_WORK === '1',
    withBench: process.env.AI_SERVER_LLAMA_SERVER_WITH_BENCH === '1',
    optional: false,
  };
  for (const arg of argv) {
    const [key, value] = arg.split(/=(.*)/s, 2);
    if (key === '--method' && value) opts.method = value;
    else if (key === '--force') opts.force = true;
    else if (key === '--no-build') opts.noBuild = true;
    else if (key === '--jobs' && Number(value) > 0) opts.jobs = Number(value);
    else if (key === '--keep-work') opts.keepWork = true;
    else if (key === '--with-bench') opts.withBench = true;
    else if (key === '--optional') opts.optional = true;
    else if (key === '--help' || key === '-h') {
      process.stderr.write(fs.readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n\nimport ')[0].replace(/^(#!.*\n)/, '') + '\n');
      process.exit(0);
    } else fail(`unknown argument: ${arg} (try --help)`);
  }
  if (opts.optional && !process.env.AI_SERVER_LLAMA_SERVER_METHOD && !argv.some((a) => a.startsWith('--method'))) opts.method = 'prebuilt';
  if (!['auto', 'prebuilt', 'cmake'].includes(opts.method)) fail(`unknown method "${opts.method}" (auto, prebuilt or cmake)`);
  if (!Number.isInteger(opts.nice) || opts.nice < 0 || opts.nice > 19) fail('AI_SERVER_BUILD_NICE must be an integer 0..19');
  return opts;
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

function which(cmd) {
  for (const dir of (process.env.PATH || '').split(path.delimiter)) {
    const p = path.join(dir, cmd);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {}
  }
  return undefined;
}

function run(cmd, args, { cwd, quiet = false, env } = {}) {
  const r = spawnSync(cmd, args, { cwd, env: env ?? process.env, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.error) fail(`cannot run ${cmd}: ${r.error.message}`);
  if (r.status !== 0) {
    const out = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim();
    fail(`${cmd} ${args.join(' ')} failed (exit ${r.status ?? r.signal})${out ? `:\n${out.split('\n').slice(-40).join('\n')}` : ''}`);
  }
  if (!quiet && r.stderr?.trim()) log(r.stderr.trim());
  return r.stdout;
}

/** Child processes still running, killed if this script is interrupted. */
const children = new Set();

/** Runs a command (niced), streaming each output line to onLine; resolves with { code, output }. */
function runAsync(cmd, args, { cwd, nice, onLine } = {}) {
  const [file, argv] = nice > 0 ? ['nice', ['-n', String(nice), cmd, ...args]] : [cmd, args];
  return new Promise((resolve) => {
    // own process group, so that an interrupted build can stop the compiler proper (cc1plus) too
    const child = spawn(file, argv, { cwd, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    children.add(child);
    let output = '';
    let partial = '';
    const onData = (buf) => {
      const text = buf.toString();
      output += text;
      if (output.length > 4 << 20) output = output.slice(-(2 << 20));
      if (onLine) {
        const lines = (partial + text).split('\n');
        partial = lines.pop();
        for (const line of lines) onLine(line);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('error', (err) => resolve({ code: -1, output: `${output}\n${err.message}` }));
    child.on('close', (code, signal) => {
      children.delete(child);
      if (onLine && partial) onLine(partial);
      resolve({ code: code ?? (signal ? 128 : -1), output });
    });
  });
}

function rmrf(p) {
  fs.rmSync(p, { recursive: true, force: true });
}

function fmtSecs(ms) {
  return `${(ms / 1000).toFixed(1)}s`;
}

function readJson(p) {
  return JSON.parse(fs.readFileSync(p, 'utf8'));
}

function isAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM';
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// Locating node-llama-cpp, its bundled source and its prebuilt libraries
// ---------------------------------------------------------------------------------------------

function findPackageDir(startDir, name) {
  for (let dir = startDir; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'node_modules', name);
    if (fs.existsSync(path.join(candidate, 'package.json'))) return candidate;
    if (path.dirname(dir) === dir) return undefined;
  }
}

function locateNodeLlamaCpp(repoRoot) {
  const nlcDir = findPackageDir(repoRoot, 'node-llama-cpp');
  if (!nlcDir) fail(`node-llama-cpp is not installed under ${repoRoot}/node_modules (run npm install)`);
  const nlcVersion = readJson(path.join(nlcDir, 'package.json')).version;
  const llamaDir = path.join(nlcDir, 'llama');
  const bundle = path.join(llamaDir, 'gitRelease.bundle');
  const infoFile = path.join(llamaDir, 'llama.cpp.info.json');
  if (!fs.existsSync(bundle)) fail(`${bundle} not found: this node-llama-cpp install ships no llama.cpp source bundle`);
  if (!fs.existsSync(infoFile)) fail(`${infoFile} not found`);
  const info = readJson(infoFile);
  if (!info.tag || !/^[\w.-]+$/.test(info.tag)) fail(`${infoFile} names no usable tag`);
  const heads = run('git', ['bundle', 'list-heads', bundle], { quiet: true }).trim().split('\n');
  const commit = heads.map((l) => l.split(/\s+/)).find(([, ref]) => ref === 'HEAD')?.[0] ?? heads[0]?.split(/\s+/)[0];
  if (!commit || !/^[0-9a-f]{40}$/.test(commit)) fail(`cannot read the commit of ${bundle}`);
  const patchesDir = path.join(llamaDir, 'patches');
  const patches = fs.existsSync(patchesDir)
    ? fs.readdirSync(patchesDir).filter((f) => /\.(diff|patch)$/.test(f)).sort().map((f) => path.join(patchesDir, f))
    : [];
  return { nlcDir, nlcVersion, bundle, tag: info.tag, repo: info.llamaCppGithubRepo, commit, patches };
}

/**
 * This project's own fixes to llama-server (scripts/llama-server-patches/*.diff, applied in name order after
 * node-llama-cpp's; they touch tools/server only, never the decode path) and one sha256 over them, which a finished
 * build must match.
 */
function locateProjectPatches(repoRoot) {
  const dir = path.join(repoRoot, 'scripts', 'llama-server-patches');
  const files = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => /\.(diff|patch)$/.test(f)).sort().map((f) => path.join(dir, f)) : [];
  const hash = createHash('sha256');
  for (const file of files) hash.update(`${path.basename(file)}\n`).update(fs.readFileSync(file));
  return { files, sha256: hash.digest('hex') };
}

function locatePrebuilt(nlc, variant) {
  const pkgDir = findPackageDir(nlc.nlcDir, `@node-llama-cpp/${variant}`);
  if (!pkgDir) return { error: `@node-llama-cpp/${variant} is not installed` };
  const binsDir = path.join(pkgDir, 'bins', variant);
  if (!fs.existsSync(binsDir)) return { error: `${binsDir} not found` };
  const metaFile = path.join(binsDir, '_nlcBuildMetadata.json');
  const release = fs.existsSync(metaFile) ? readJson(metaFile).buildOptions?.llamaCpp?.release : undefined;
  if (release !== nlc.tag) {
    return { error: `prebuilt libraries in ${binsDir} were built from llama.cpp "${release}", the bundled source is "${nlc.tag}"` };
  }
  const files = fs.readdirSync(binsDir).filter((f) => f.endsWith('.so'));
  const pick = (re) => {
    const found = files.filter((f) => re.test(f));
    return found.length === 1 ? found[0] : undefined;
  };
  const libs = {
    common: pick(/^libllama-common\.so$/),
    llama: pick(/^libllama(\.[\w]+)*\.so$/),
    ggml: pick(/^libggml(\.[\w]+)*\.so$/),
    ggmlBase: pick(/^libggml-base\.so$/),
  };
  const missing = Object.entries(libs).filter(([, v]) => !v).map(([k]) => k);
  if (missing.length) return { error: `${binsDir} lacks (or has ambiguous) libraries: ${missing.join(', ')}` };
  const mtmd = pick(/^libmtmd(\.[\w]+)*\.so$/);
  const commonBytes = fs.readFileSync(path.join(binsDir, libs.common));
  return {
    binsDir,
    libs,
    mtmd,
    allLibs: files,
    // LLAMA_SUBPROCESS changes the layout of common_subproc (common/subproc.h): match how the library was built
    subprocess: commonBytes.includes('subprocess_create'),
    // the prebuilt cpp-httplib inside libllama-common has no TLS; build ours the same way
  };
}

// ---------------------------------------------------------------------------------------------
// Minimal CMakeLists.txt reader: source lists of add_library/add_executable targets
// ---------------------------------------------------------------------------------------------

function cmakeCommands(file) {
  const text = fs.readFileSync(file, 'utf8').replace(/#[^\n]*/g, '');
  const cmds = [];
  const re = /([A-Za-z_]\w*)\s*\(((?:[^()]|\([^()]*\))*)\)/g;
  for (let m; (m = re.exec(text)); ) cmds.push({ name: m[1].toLowerCase(), args: m[2].trim().split(/\s+/).filter(Boolean) });
  return cmds;
}

/** Returns Map<target, {kind, sources, definitions}> for a CMakeLists.txt (only the simple constructs llama.cpp uses). */
function cmakeTargets(file) {
  const vars = new Map();
  const targets = new Map();
  const expand = (s) => s.replace(/\$\{(\w+)\}/g, (_, v) => vars.get(v) ?? '');
  const dir = path.dirname(file);
  const cxxOverrides = new Set();
  // Commands inside if() blocks (TLS, platform or option specific settings) are ignored, except for the
  // target definitions themselves; the unconditional ones are what a default Linux build uses.
  let depth = 0;
  for (const { name, args: rawArgs } of cmakeCommands(file)) {
    const args = rawArgs.flatMap((a) => expand(a).split(/;|\s+/)).filter(Boolean);
    if (name === 'if' || name === 'foreach' || name === 'function' || name === 'macro' || name === 'while') depth++;
    else if (name === 'endif' || name === 'endforeach' || name === 'endfunction' || name === 'endmacro' || name === 'endwhile') depth = Math.max(0, depth - 1);
    else if (depth > 0 && name !== 'add_library' && name !== 'add_executable' && !(name === 'set' && rawArgs[0] === 'TARGET')) continue;
    else if (name === 'set' && args.length >= 1) vars.set(rawArgs[0], args.slice(1).filter((a) => !['CACHE', 'PARENT_SCOPE'].includes(a)).join(' '));
    else if (name === 'add_library' || name === 'add_executable') {
      if (args.includes('ALIAS') || args.includes('IMPORTED') || args.includes('INTERFACE')) continue;
      const sources = args.slice(1).filter((a) => /\.(c|cc|cpp)$/.test(a)).map((a) => path.resolve(dir, a));
      targets.set(args[0], { kind: name === 'add_library' ? 'library' : 'executable', sources, definitions: [] });
    } else if (name === 'target_compile_definitions' && targets.has(args[0])) {
      targets.get(args[0]).definitions.push(...args.slice(1).filter((a) => /^[A-Za-z_]\w*(=.*)?$/.test(a) && !['PRIVATE', 'PUBLIC', 'INTERFACE'].includes(a)));
    } else if (name === 'set_source_files_properties') {
      const i = args.indexOf('LANGUAGE');
      if (i > 0 && args[i + 1] === 'CXX') for (const s of args.slice(0, args.indexOf('PROPERTIES'))) cxxOverrides.add(path.resolve(dir, s));
    }
  }
  return { targets, cxxOverrides };
}

// ---------------------------------------------------------------------------------------------
// Source checkout
// ---------------------------------------------------------------------------------------------

function prepareSource(nlc, ownPatches, srcDir) {
  const stamp = path.join(srcDir, '.ai-server-source-ready');
  const stampText = `${nlc.commit} ${ownPatches.sha256}`;
  if (fs.existsSync(stamp) && fs.readFileSync(stamp, 'utf8').trim() === stampText) {
    log(`reusing source checkout ${srcDir}`);
    return;
  }
  rmrf(srcDir);
  fs.mkdirSync(path.dirname(srcDir), { recursive: true });
  log(`cloning ${path.relative(process.cwd(), nlc.bundle) || nlc.bundle} (llama.cpp ${nlc.tag}, ${nlc.commit.slice(0, 12)})`);
  run('git', ['-c', 'advice.detachedHead=false', 'clone', '--quiet', nlc.bundle, srcDir], { quiet: true });
  const head = run('git', ['-C', srcDir, 'rev-parse', 'HEAD'], { quiet: true }).trim();
  if (head !== nlc.commit) fail(`cloned HEAD ${head} differs from the bundle's ${nlc.commit}`);
  // node-llama-cpp applies these patches to the source before building its binaries; do the same
  for (const patch of nlc.patches) {
    const check = spawnSync('git', ['-C', srcDir, 'apply', '--check', '--ignore-whitespace', patch], { encoding: 'utf8' });
    if (check.status === 0) {
      run('git', ['-C', srcDir, 'apply', '--ignore-whitespace', patch], { quiet: true });
      log(`applied node-llama-cpp patch ${path.basename(patch)}`);
    } else {
      const reverse = spawnSync('git', ['-C', srcDir, 'apply', '--check', '--reverse', '--ignore-whitespace', patch], { encoding: 'utf8' });
      log(reverse.status === 0 ? `patch ${path.basename(patch)} already in the source` : `warning: patch ${path.basename(patch)} does not apply, building without it`);
    }
  }
  // ours are written for this exact source (node-llama-cpp is pinned): one that does not apply is an error
  for (const patch of ownPatches.files) {
    const check = spawnSync('git', ['-C', srcDir, 'apply', '--check', patch], { encoding: 'utf8' });
    if (check.status !== 0) fail(`${path.relative(process.cwd(), patch)} does not apply to llama.cpp ${nlc.tag}: ${check.stderr.trim()}`);
    run('git', ['-C', srcDir, 'apply', patch], { quiet: true });
    log(`applied ${path.basename(patch)}`);
  }
  fs.writeFileSync(stamp, `${stampText}\n`);
}

// ---------------------------------------------------------------------------------------------
// Method "prebuilt": g++ against node-llama-cpp's shared libraries
// ---------------------------------------------------------------------------------------------

async function compileAll(units, { jobs, nice, label }) {
  let next = 0;
  let done = 0;
  const failures = [];
  const started = Date.now();
  const worker = async () => {
    while (next < units.length && failures.length === 0) {
      const unit = units[next++];
      if (unit.upToDate()) {
        done++;
        continue;
      }
      const t0 = Date.now();
      const tmp = `${unit.out}.tmp`;
      const r = await runAsync(unit.compiler, [...unit.args, '-o', tmp], { nice });
      if (r.code !== 0) {
        failures.push({ unit, output: r.output });
        rmrf(tmp);
        return;
      }
      fs.renameSync(tmp, unit.out);
      done++;
      log(`${label} [${done}/${units.length}] ${unit.name} (${fmtSecs(Date.now() - t0)})`);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, jobs) }, worker));
  if (failures.length) {
    const { unit, output } = failures[0];
    fail(`compiling ${unit.name} failed:\n${output.trim().split('\n').slice(-30).join('\n')}`);
  }
  return Date.now() - started;
}

/**
 * The tools built beside llama-server, each an executable of its own from its CMake targets (the tool's code is a
 * library target, its main() an executable target): executable -> [source directory, targets].
 */
const EXTRA_TOOLS = {
  'llama-quantize': ['tools/quantize', ['llama-quantize-impl', 'llama-quantize']],
  'llama-bench': ['tools/llama-bench', ['llama-bench-impl', 'llama-bench']],
  'llama-batched-bench': ['tools/batched-bench', ['llama-batched-bench-impl', 'llama-batched-bench']],
};
const QUANTIZE_TOOL = 'llama-quantize';
const BENCH_TOOLS = ['llama-bench', 'llama-batched-bench'];

/** The tools a build must have besides llama-server: llama-quantize always, the bench tools when asked for. */
function wantedTools(opts) {
  return [QUANTIZE_TOOL, ...(opts.withBench ? BENCH_TOOLS : [])];
}

/**
 * Compiles and links `exes` (llama-server and/or tools of EXTRA_TOOLS) into stageDir. Building llama-server also puts
 * node-llama-cpp's libraries there; building tools alone (completing a finished build) expects them there already.
 */
async function buildPrebuilt({ nlc, prebuilt, srcDir, workDir, stageDir, opts, exes }) {
  if (process.platform !== 'linux') fail('the prebuilt method is only implemented for Linux');
  if (!which('g++') || !which('gcc')) fail('g++/gcc not found');

  const server = cmakeTargets(path.join(srcDir, 'tools/server/CMakeLists.txt'));
  const mtmd = cmakeTargets(path.join(srcDir, 'tools/mtmd/CMakeLists.txt'));
  const httplib = cmakeTargets(path.join(srcDir, 'vendor/cpp-httplib/CMakeLists.txt'));
  const hash = cmakeTargets(path.join(srcDir, 'vendor/hash/CMakeLists.txt'));
  const uiEmbed = path.join(srcDir, 'tools/ui/embed.cpp');
  const need = (t, name, file) => t.targets.get(name) ?? fail(`unsupported llama.cpp source layout: no target "${name}" in ${file} (use --method=cmake)`);
  const serverSources = ['server-context', 'llama-server-impl', 'llama-server'].flatMap((n) => need(server, n, 'tools/server/CMakeLists.txt').sources);
  const mtmdTarget = need(mtmd, 'mtmd', 'tools/mtmd/CMakeLists.txt');
  const httplibTarget = need(httplib, 'cpp-httplib', 'vendor/cpp-httplib/CMakeLists.txt');
  const hashTarget = need(hash, 'vendor-hash', 'vendor/hash/CMakeLists.txt');
  if (!fs.existsSync(uiEmbed)) fail('unsupported llama.cpp source layout: tools/ui/embed.cpp not found (use --method=cmake)');

  const genDir = path.join(workDir, 'gen');
  fs.mkdirSync(genDir, { recursive: true });
  const withServer = exes.includes('llama-server');

  // The web UI asset table (what tools/ui/CMakeLists.txt generates). Without network or npm-built assets, cmake
  // embeds an empty table too: the API works, "/" serves no UI.
  if (withServer) {
    const embedExe = path.join(genDir, 'llama-ui-embed');
    log('generating the web UI asset table (tools/ui/embed.cpp)');
    const embed = await runAsync('g++', ['-O1', '-std=c++17', uiEmbed, '-o', embedExe], { nice: opts.nice });
    if (embed.code !== 0) fail(`compiling tools/ui/embed.cpp failed:\n${embed.output}`);
    const uiDist = path.join(srcDir, 'tools/ui/dist');
    run(embedExe, [path.join(genDir, 'ui.cpp'), path.join(genDir, 'ui.h'), ...(fs.existsSync(path.join(uiDist, 'index.html')) ? [uiDist] : [])], { quiet: true });
  }

  const defs = [];
  if (prebuilt.subprocess) defs.push('LLAMA_SUBPROCESS');
  const mtmdDefs = [...defs, ...(prebuilt.subprocess ? ['MTMD_VIDEO'] : [])];
  const includes = ['include', 'ggml/include', 'common', 'vendor', 'tools/mtmd', 'tools/server', '.'].map((d) => path.join(srcDir, d));
  includes.push(genDir);
  const optFlags = ['-O2', '-DNDEBUG', '-w', '-pthread'];
  const serverGroups = [
    { sources: serverSources, defs },
    { sources: prebuilt.mtmd ? [] : mtmdTarget.sources, defs: mtmdDefs },
    { sources: httplibTarget.sources, defs: [...defs, ...httplibTarget.definitions] },
    { sources: hashTarget.sources, defs, extraIncludes: [path.join(srcDir, 'vendor/hash')], cxx: hash.cxxOverrides },
    { sources: [path.join(genDir, 'ui.cpp')], defs },
  ];
  const groups = withServer ? [...serverGroups] : [];
  // The tools (llama-quantize; llama-bench and llama-batched-bench with --with-bench), each its own executable
  const extraExes = exes.filter((exe) => exe !== 'llama-server');
  for (const exe of extraExes) {
    const [dir, targets] = EXTRA_TOOLS[exe] ?? fail(`unknown tool ${exe}`);
    const t = cmakeTargets(path.join(srcDir, dir, 'CMakeLists.txt'));
    const sources = targets.flatMap((n) => need(t, n, `${dir}/CMakeLists.txt`).sources);
    groups.push({ sources, defs, exe });
  }

  // Objects depend on the flags, not on which executables this run links: a run that completes a build reuses them
  const flagsKey = createHash('sha256').update(JSON.stringify({ optFlags, groups: serverGroups.map((g) => g.defs), includes })).digest('hex').slice(0, 12);
  const objDir = path.join(workDir, `obj-${flagsKey}`);
  fs.mkdirSync(objDir, { recursive: true });
  const units = [];
  for (const g of groups) {
    for (const src of g.sources) {
      if (!fs.existsSync(src)) fail(`source file listed by CMake not found: ${src}`);
      const rel = path.relative(srcDir, src).startsWith('..') ? path.relative(workDir, src) : path.relative(srcDir, src);
      const isC = src.endsWith('.c') && !g.cxx?.has(src);
      const out = path.join(objDir, `${rel.replace(/[\\/]/g, '_')}.o`);
      const inc = [...includes, ...(g.extraIncludes ?? [])].map((d) => `-I${d}`);
      const args = isC
        ? [...optFlags.filter((f) => f !== '-pthread'), ...inc, ...g.defs.map((d) => `-D${d}`), '-c', src]
        : ['-std=c++17', ...(src.endsWith('.c') ? ['-x', 'c++'] : []), ...optFlags, ...inc, ...g.defs.map((d) => `-D${d}`), '-c', src];
      const srcMtime = fs.statSync(src).mtimeMs;
      units.push({
        exe: g.exe ?? 'llama-server',
        name: rel,
        out,
        compiler: isC ? 'gcc' : 'g++',
        args,
        upToDate: () => {
          try {
            return fs.statSync(out).mtimeMs >= srcMtime;
          } catch {
            return false;
          }
        },
      });
    }
  }
  // Longest first: keeps both cores busy until the end
  const weight = (u) => (/httplib|clip\.cpp|server-context|server-tools|server-models|mtmd-helper\.cpp/.test(u.name) ? 1 : 0);
  units.sort((a, b) => weight(b) - weight(a));
  const cached = units.filter((u) => u.upToDate()).length;
  log(`compiling ${units.length} files with g++ (${opts.jobs} jobs, nice ${opts.nice})${cached ? `, ${cached} already compiled` : ''}`);
  const compileMs = await compileAll(units, { jobs: opts.jobs, nice: opts.nice, label: 'g++' });

  // Libraries beside the binary: RUNPATH=$ORIGIN finds them, and ggml's backend loader looks for the
  // libggml-cpu-*.so variants in the executable's directory.
  if (withServer) for (const f of prebuilt.allLibs) fs.copyFileSync(path.join(prebuilt.binsDir, f), path.join(stageDir, f));
  const libArgs = [prebuilt.libs.common, prebuilt.mtmd, prebuilt.libs.llama, prebuilt.libs.ggml, prebuilt.libs.ggmlBase].filter(Boolean).map((l) => `-l:${l}`);
  const t0 = Date.now();
  for (const name of exes) {
    log(`linking ${name}`);
    const objs = units.filter((u) => u.exe === name).map((u) => u.out);
    const link = await runAsync('g++', ['-pthread', '-o', path.join(stageDir, name), ...objs, `-L${stageDir}`, ...libArgs, '-Wl,-rpath,$ORIGIN', '-Wl,--enable-new-dtags'], { nice: opts.nice });
    if (link.code !== 0) {
      const undef = [...new Set(link.output.match(/undefined reference to `[^']+'/g) ?? [])];
      fail(`linking ${name} failed${undef.length ? ` (${undef.length} symbols missing from node-llama-cpp's libraries, e.g. ${undef.slice(0, 5).join('; ')})` : ''}:\n${link.output.split('\n').slice(-20).join('\n')}`);
    }
  }
  return { compileMs, linkMs: Date.now() - t0, files: units.length, extraBinaries: extraExes, flags: [...optFlags, ...defs.map((d) => `-D${d}`)], prebuiltLibs: prebuilt.binsDir };
}

// ---------------------------------------------------------------------------------------------
// Method "cmake": full build of the llama-server target
// ---------------------------------------------------------------------------------------------

const CMAKE_FLAGS = [
  '-DCMAKE_BUILD_TYPE=Release',
  '-DBUILD_SHARED_LIBS=OFF',
  '-DGGML_NATIVE=ON',
  '-DGGML_CCACHE=OFF',
  '-DLLAMA_BUILD_SERVER=ON',
  '-DLLAMA_BUILD_TESTS=OFF',
  '-DLLAMA_BUILD_EXAMPLES=OFF',
  '-DLLAMA_BUILD_APP=OFF',
  '-DLLAMA_OPENSSL=OFF',
  '-DLLAMA_BUILD_UI=OFF',
  '-DLLAMA_USE_PREBUILT_UI=OFF',
];

/**
 * With GGML_NATIVE=ON on a CPU that reports AMX, ggml compiles its AMX matmul kernels, and their tile configuration
 * (a struct on the stack passed to _tile_loadconfig) gets optimized away by GCC 12: the first AMX instruction then
 * raises SIGILL (seen here with llama.cpp v0.4.0, g++ 12.2; cf. llama.cpp PR #26954). node-llama-cpp's prebuilt
 * sapphirerapids variant (GCC 11) is not affected. So AMX is turned off for native cmake builds unless the caller's
 * flags mention AMX; decode (one token per step) does not use the AMX kernels anyway.
 */
function amxWorkaroundFlags(extra) {
  if (process.platform !== 'linux' || process.arch !== 'x64') return [];
  if (extra.some((f) => /AMX|GGML_NATIVE=OFF|CMAKE_C(XX)?_FLAGS/i.test(f))) return [];
  let cpuinfo = '';
  try {
    cpuinfo = fs.readFileSync('/proc/cpuinfo', 'utf8');
  } catch {}
  if (!/\bamx_tile\b/.test(cpuinfo)) return [];
  const noAmx = '-mno-amx-tile -mno-amx-int8 -mno-amx-bf16';
  return [`-DCMAKE_C_FLAGS=${noAmx}`, `-DCMAKE_CXX_FLAGS=${noAmx}`];
}

function cmakeFlags() {
  const extra = (process.env.AI_SERVER_LLAMA_SERVER_CMAKE_FLAGS || '').split(/\s+/).filter(Boolean);
  return [...CMAKE_FLAGS, ...amxWorkaroundFlags(extra), ...extra];
}

async function buildCmake({ srcDir, workDir, stageDir, opts }) {
  if (!which('cmake')) fail('cmake not found');
  const buildDir = path.join(workDir, 'cmake-build');
  const ninja = which('ninja');
  const t0 = Date.now();
  // (re)configure: quick on an existing build tree, and picks up changed flags when resuming
  log(`configuring with cmake (${ninja ? 'Ninja' : 'Unix Makefiles'})`);
  const conf = await runAsync('cmake', ['-S', srcDir, '-B', buildDir, ...(ninja ? ['-G', 'Ninja'] : []), ...cmakeFlags()], { nice: opts.nice });
  if (conf.code !== 0) fail(`cmake configure failed:\n${conf.output.split('\n').slice(-30).join('\n')}`);
  const configureMs = Date.now() - t0;
  log(`building target llama-server (${opts.jobs} jobs, nice ${opts.nice}); this compiles llama.cpp and ggml`);
  const t1 = Date.now();
  let lastLog = 0;
  const extraExes = wantedTools(opts);
  const r = await runAsync('cmake', ['--build', buildDir, '--target', 'llama-server', ...extraExes, '--parallel', String(opts.jobs)], {
    nice: opts.nice,
    onLine: (line) => {
      const m = /^\[\s*(\d+)\s*[/%]\s*(\d*)\]?\s*(.*)/.exec(line);
      if (m && Date.now() - lastLog > 3000) {
        lastLog = Date.now();
        log(`cmake ${line.slice(0, 160)}`);
      }
    },
  });
  if (r.code !== 0) {
    const lines = r.output.split('\n');
    const errors = lines.filter((l) => /error|FAILED/.test(l)).slice(0, 20);
    fail(`cmake build failed:\n${[...errors, '...', ...lines.slice(-15)].join('\n')}`);
  }
  for (const name of ['llama-server', ...extraExes]) {
    const built = path.join(buildDir, 'bin', name);
    if (!fs.existsSync(built)) fail(`cmake build finished but ${built} is missing`);
    fs.copyFileSync(built, path.join(stageDir, name));
    fs.chmodSync(path.join(stageDir, name), 0o755);
  }
  return { configureMs, compileMs: Date.now() - t1, extraBinaries: extraExes, flags: cmakeFlags() };
}

// ---------------------------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------------------------

function checkBinary(exe) {
  const env = { ...process.env };
  delete env.LD_LIBRARY_PATH;
  const r = spawnSync(exe, ['--version'], { encoding: 'utf8', env, timeout: 60_000 });
  const out = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  if (r.error || r.status !== 0 || !/version/i.test(out)) {
    fail(`the built ${exe} does not run (exit ${r.status ?? r.signal ?? r.error?.message}):\n${out.trim().split('\n').slice(-10).join('\n')}`);
  }
  return out.trim().split('\n').filter((l) => /version|built with/.test(l)).join('; ');
}

/** Runs `llama-quantize --help` (it prints its usage and exits 1): its shared libraries must load. */
function checkQuantizeTool(exe) {
  const env = { ...process.env };
  delete env.LD_LIBRARY_PATH;
  const r = spawnSync(exe, ['--help'], { encoding: 'utf8', env, timeout: 60_000 });
  const out = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  if (r.error || !/usage:/.test(out) || !/Q4_K_M/.test(out)) {
    fail(`the built ${exe} does not run (exit ${r.status ?? r.signal ?? r.error?.message}):\n${out.trim().split('\n').slice(-10).join('\n')}`);
  }
}

/**
 * The finished build in `dir` if it matches `want` (source, patches, method, variant), with `missing`: the tools of
 * `want.tools` it lacks (a build made before they were asked for), which a later run adds to it.
 */
function finishedBuild(dir, want) {
  try {
    const info = readJson(path.join(dir, BUILD_INFO));
    if (info.schema !== BUILD_INFO_SCHEMA || info.commit !== want.commit || info.nodeLlamaCppVersion !== want.nlcVersion) return undefined;
    if (info.projectPatchesSha256 !== want.projectPatchesSha256) return undefined;
    if (want.method !== 'auto' && info.method !== want.method) return undefined;
    if (info.method === 'prebuilt' && info.variant !== want.variant) return undefined;
    const exe = path.join(dir, 'llama-server');
    fs.accessSync(exe, fs.constants.X_OK);
    const missing = want.tools.filter((tool) => !info.extraBinaries?.includes(tool) || !isExecutable(path.join(dir, tool)));
    return { info, exe, missing };
  } catch {
    return undefined;
  }
}

function isExecutable(file) {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Moves a staged build into place: the final directory only ever holds a complete build. */
function install(stageDir, outDir) {
  const old = `${outDir}.old-${process.pid}`;
  if (fs.existsSync(outDir)) fs.renameSync(outDir, old);
  fs.renameSync(stageDir, outDir);
  rmrf(old);
}

/**
 * Completes a finished prebuilt build that lacks some tools: builds only them into a copy of it (hard links; nothing
 * in the copy is written to but the new files and build-info.json), which then replaces it.
 */
async function completeBuild({ nlc, srcDir, workDir, stageDir, outDir, existing, opts }) {
  const started = Date.now();
  const prebuilt = locatePrebuilt(nlc, existing.info.variant);
  if (prebuilt.error) fail(`cannot add ${existing.missing.join(', ')} to the build in ${outDir}: ${prebuilt.error}`);
  log(`the build in ${outDir} lacks ${existing.missing.join(', ')}: building ${existing.missing.length === 1 ? 'it' : 'them'}`);
  fs.mkdirSync(stageDir, { recursive: true });
  for (const f of fs.readdirSync(outDir)) {
    if (f === BUILD_INFO || existing.missing.includes(f)) continue;
    try {
      fs.linkSync(path.join(outDir, f), path.join(stageDir, f));
    } catch {
      fs.copyFileSync(path.join(outDir, f), path.join(stageDir, f));
    }
  }
  const details = await buildPrebuilt({ nlc, prebuilt, srcDir, workDir, stageDir, opts, exes: existing.missing });
  if (existing.missing.includes(QUANTIZE_TOOL)) checkQuantizeTool(path.join(stageDir, QUANTIZE_TOOL));
  const info = {
    ...existing.info,
    extraBinaries: [...new Set([...(existing.info.extraBinaries ?? []), ...existing.missing])],
    completions: [
      ...(existing.info.completions ?? []),
      {
        binaries: existing.missing,
        builtAt: new Date().toISOString(),
        buildSeconds: Math.round((Date.now() - started) / 100) / 10,
        compileSeconds: Math.round(details.compileMs / 100) / 10,
        files: details.files,
      },
    ],
  };
  fs.writeFileSync(path.join(stageDir, BUILD_INFO), `${JSON.stringify(info, null, 2)}\n`);
  install(stageDir, outDir);
  log(`done: added ${existing.missing.join(', ')} to the build in ${fmtSecs(Date.now() - started)}`);
}

async function acquireLock(lockFile) {
  let waitedLogged = false;
  for (;;) {
    try {
      fs.writeFileSync(lockFile, `${process.pid}\n`, { flag: 'wx' });
      let held = true;
      return () => {
        if (!held) return;
        held = false;
        try {
          if (Number(fs.readFileSync(lockFile, 'utf8').trim()) === process.pid) rmrf(lockFile);
        } catch {}
      };
    } catch (err) {
      if (err.code !== 'EEXIST') throw err;
      const pid = Number(fs.readFileSync(lockFile, 'utf8').trim());
      if (!pid || !isAlive(pid)) {
        rmrf(lockFile);
        continue;
      }
      if (!waitedLogged) log(`another build (pid ${pid}) holds ${lockFile}; waiting`);
      waitedLogged = true;
      await sleep(2000);
    }
  }
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
  if (!which('git')) fail('git not found');
  const nlc = locateNodeLlamaCpp(repoRoot);
  const ownPatches = locateProjectPatches(repoRoot);
  const defaultVariant = `${process.platform}-${process.arch}`;
  const suffix = `${opts.variant !== defaultVariant ? `-${opts.variant.replace(`${defaultVariant}-`, '')}` : ''}${opts.method === 'cmake' ? '-cmake' : ''}`;
  const outDir = path.resolve(process.env.AI_SERVER_LLAMA_SERVER_DIR || path.join(repoRoot, '.cache', 'llama-server', `${nlc.tag}${suffix}`));
  // --no-build only locates llama-server: a build that lacks llama-quantize still serves
  const tools = wantedTools(opts).filter((tool) => !(opts.noBuild && tool === QUANTIZE_TOOL));
  const want = { commit: nlc.commit, nlcVersion: nlc.nlcVersion, projectPatchesSha256: ownPatches.sha256, method: opts.method, variant: opts.variant, tools };

  const existing = !opts.force && finishedBuild(outDir, want);
  if (existing && existing.missing.length === 0) {
    log(`up to date: ${existing.info.method} build of llama.cpp ${existing.info.tag} in ${outDir}`);
    process.stdout.write(`${existing.exe}\n`);
    return;
  }
  if (opts.noBuild) {
    fail(existing ? `the build in ${outDir} lacks ${existing.missing.join(', ')} (run without --no-build to add it)` : `no finished build in ${outDir} (run without --no-build to build it)`);
  }

  fs.mkdirSync(path.dirname(outDir), { recursive: true });
  const release = await acquireLock(`${outDir}.lock`);
  const stageDir = `${outDir}.tmp-${process.pid}`;
  const cleanup = () => {
    for (const child of children) {
      try {
        process.kill(-child.pid, 'SIGTERM');
      } catch {}
    }
    rmrf(stageDir);
    release();
  };
  process.on('exit', cleanup);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => process.exit(130));
  try {
    const again = !opts.force && finishedBuild(outDir, want);
    if (again && again.missing.length === 0) {
      log(`built meanwhile by another process: ${outDir}`);
      process.stdout.write(`${again.exe}\n`);
      return;
    }
    const workDir = `${outDir}.work`;
    const srcDir = path.join(workDir, 'src');
    // Leftovers of interrupted runs (we hold the lock, so no other build is writing them)
    const base = path.basename(outDir);
    for (const f of fs.readdirSync(path.dirname(outDir))) {
      if (f.startsWith(`${base}.tmp-`) || f.startsWith(`${base}.old-`)) rmrf(path.join(path.dirname(outDir), f));
    }

    // A prebuilt build that lacks only some tools gets them; the cmake method rebuilds (its build tree is gone)
    if (again && again.info.method === 'prebuilt') {
      completing = again.missing;
      prepareSource(nlc, ownPatches, srcDir);
      try {
        await completeBuild({ nlc, srcDir, workDir, stageDir, outDir, existing: again, opts });
      } finally {
        rmrf(stageDir);
      }
      if (!opts.keepWork) rmrf(workDir);
      process.stdout.write(`${again.exe}\n`);
      return;
    }

    let method = opts.method;
    let prebuilt;
    if (method !== 'cmake') {
      prebuilt = locatePrebuilt(nlc, opts.variant);
      if (prebuilt.error) {
        if (method === 'prebuilt') fail(`prebuilt method unavailable: ${prebuilt.error}`);
        log(`prebuilt method unavailable (${prebuilt.error}); falling back to cmake`);
        method = 'cmake';
      } else method = 'prebuilt';
    }

    const started = Date.now();
    prepareSource(nlc, ownPatches, srcDir);
    fs.mkdirSync(stageDir, { recursive: true });
    let details;
    try {
      if (method === 'prebuilt') {
        try {
          details = await buildPrebuilt({ nlc, prebuilt, srcDir, workDir, stageDir, opts, exes: ['llama-server', ...wantedTools(opts)] });
        } catch (err) {
          if (opts.method !== 'auto' || !(err instanceof BuildError)) throw err;
          log(`prebuilt method failed: ${err.message.split('\n')[0].replace(/:$/, '')}; falling back to cmake`);
          method = 'cmake';
          rmrf(stageDir);
          fs.mkdirSync(stageDir, { recursive: true });
        }
      }
      if (method === 'cmake') details = await buildCmake({ srcDir, workDir, stageDir, opts });

      const exe = path.join(stageDir, 'llama-server');
      const version = checkBinary(exe);
      checkQuantizeTool(path.join(stageDir, QUANTIZE_TOOL));
      const info = {
        schema: BUILD_INFO_SCHEMA,
        method,
        variant: method === 'prebuilt' ? opts.variant : undefined,
        tag: nlc.tag,
        repo: nlc.repo,
        commit: nlc.commit,
        patches: nlc.patches.map((p) => path.basename(p)),
        projectPatches: ownPatches.files.map((p) => path.basename(p)),
        projectPatchesSha256: ownPatches.sha256,
        nodeLlamaCppVersion: nlc.nlcVersion,
        version,
        builtAt: new Date().toISOString(),
        buildSeconds: Math.round((Date.now() - started) / 100) / 10,
        jobs: opts.jobs,
        host: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, compiler: run('g++', ['-dumpfullversion'], { quiet: true }).trim() },
        binaryBytes: fs.statSync(exe).size,
        ...details,
        compileMs: undefined,
        compileSeconds: details.compileMs !== undefined ? Math.round(details.compileMs / 100) / 10 : undefined,
      };
      fs.writeFileSync(path.join(stageDir, BUILD_INFO), `${JSON.stringify(info, null, 2)}\n`);

      install(stageDir, outDir);
      if (!opts.keepWork) rmrf(workDir);
      log(`done: ${method} build in ${fmtSecs(Date.now() - started)} (${version}); binary ${(info.binaryBytes / 1e6).toFixed(1)} MB`);
      process.stdout.write(`${path.join(outDir, 'llama-server')}\n`);
    } finally {
      rmrf(stageDir);
    }
  } finally {
    cleanup();
  }
}

/** The tools being added to a finished build (whose llama-server stays usable if that fails). */
let completing;

const optional = process.argv.includes('--optional');
if (optional && process.env.AI_SERVER_SKIP_LLAMA_SERVER_BUILD === '1') {
  log('skipped (AI_SERVER_SKIP_LLAMA_SERVER_BUILD=1): the server will use its in-process engine');
} else {
  main().catch((err) => {
    log(`error: ${err instanceof BuildError ? err.message : err?.stack ?? err}`);
    if (optional && completing) {
      const quantize = completing.includes(QUANTIZE_TOOL) ? ' (local quantization is unavailable until `node scripts/build-llama-server.mjs` succeeds)' : '';
      log(`${completing.join(', ')} could not be added to the build; llama-server is unchanged${quantize}.`);
      process.exit(0);
    }
    if (optional) {
      log('llama-server was not built; the server will use its in-process engine (slower). Build it later with `node scripts/build-llama-server.mjs`.');
      process.exit(0);
    }
    process.exit(1);
  });
}
