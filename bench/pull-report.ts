import { formatBytes } from "../src/domain/byte-size.js";
import type { CurlRun } from "./pull-curl.js";
import type { ServerPull } from "./pull-server.js";
import { spread } from "./sample.js";

/** The goals: a pull at least this fraction of curl's speed… */
export const CURL_GOAL = 0.9;
/** …and, under a per-connection rate limit, parallel parts at least this many times one stream. */
export const PARALLEL_GOAL = 3;
/** …and the second half of a download adds less than this fraction of its bytes to the server's memory ("stays flat"). */
export const FLAT_GOAL = 0.01;

/** What the pull bench measured, per repetition (index i of each array is repetition i). */
export interface PullResults {
  /** Row 1 (and 3): the large file without a rate limit. */
  size: number;
  curl: CurlRun[];
  server: ServerPull[];
  /** CPU time of the fake Hub and CDN's process during each run (ms). */
  cdnCpuMs: { curl: number[]; server: number[] };
  /** Row 2: the smaller file with every CDN connection capped at `bytesPerSecond`. */
  limited: { size: number; bytesPerSecond: number; curl: CurlRun[]; parallel: ServerPull[]; single: ServerPull[] };
  connections: number;
}

const mbps = (bytes: number, ms: number): number => bytes / 1e6 / (ms / 1000);
const cell = (values: number[], digits: number): string => {
  const s = spread(values);
  return `${s.median.toFixed(digits)} (${s.min.toFixed(digits)}–${s.max.toFixed(digits)})`;
};
const median = (values: number[]): number => spread(values).median;
const verdict = (ok: boolean): string => (ok ? "meets the goal" : "MISSES the goal");

/** The three tables: throughput beside curl, parallel parts under a rate limit, memory while downloading. */
export function pullReport(r: PullResults): string {
  return [throughputTable(r), "", rateLimitTable(r), "", memoryTable(r)].join("\n");
}

function throughputTable(r: PullResults): string {
  const curlMs = r.curl.map((c) => c.ms);
  const syncedMs = r.curl.map((c) => c.ms + c.syncMs);
  const verifiedMs = r.curl.map((c) => c.ms + c.syncMs + c.hashMs);
  const serverMs = r.server.map((s) => s.totalMs);
  const bytesMs = r.server.map((s) => s.bytesMs);
  const row = (label: string, ms: number[], cpu: number[] | undefined, cdn: number[] | undefined): string =>
    `| ${label} | ${cell(ms.map((m) => m / 1000), 2)} | ${cell(ms.map((m) => mbps(r.size, m)), 0)} | ${cpu ? cell(cpu.map((m) => m / 1000), 2) : "–"} | ${cdn ? cell(cdn.map((m) => m / 1000), 2) : "–"} |`;
  const ratios = r.server.map((s, i) => r.curl[i]!.ms / s.totalMs);
  const ratio = median(curlMs) / median(serverMs);
  const synced = median(syncedMs) / median(serverMs);
  const verified = median(verifiedMs) / median(serverMs);
  return [
    `### Throughput: one ${formatBytes(r.size)} GGUF from the fake Hub, ai-server beside curl`,
    "",
    "| | time (s) | MB/s | CPU of the client (s) | CPU of the fake Hub + CDN (s) |",
    "|---|--:|--:|--:|--:|",
    row("`curl -L -o FILE` (one connection, no fsync)", curlMs, r.curl.map((c) => c.cpuMs), r.cdnCpuMs.curl),
    row("curl, then `sync FILE`", syncedMs, undefined, undefined),
    row("curl, then `sync FILE`, then `openssl dgst -sha256 FILE` (durable and verified, like the server's)", verifiedMs, undefined, undefined),
    row(`ai-server \`POST /api/pull\` (${r.connections} connections): request → \`success\``, serverMs, r.server.map((s) => s.cpuMs), r.cdnCpuMs.server),
    row("… of which the download (`pulling manifest` → every byte written, ±0.1 s)", bytesMs, undefined, undefined),
    "",
    "- CPU: user + system time of every thread of the process (the server's include its sha256 worker, the threads that write the file and the garbage collector's)",
    `- ai-server's phases, median: resolve (Hub API, header probe, memory estimate) ${(median(r.server.map((s) => s.resolveMs)) / 1000).toFixed(2)} s, ` +
      `download ${(median(bytesMs) / 1000).toFixed(2)} s, then the hash's tail, fsync, install and manifest ${(median(r.server.map((s) => s.finishMs)) / 1000).toFixed(2)} s`,
    `- throughput ai-server / curl: ${ratio.toFixed(3)} (ratio of the medians; per-repetition ratios ${cell(ratios, 3)}) → ${verdict(ratio >= CURL_GOAL)} (≥ ${CURL_GOAL})`,
    `- ai-server / (curl + sync): ${synced.toFixed(3)}; ai-server / (curl + sync + sha256): ${verified.toFixed(3)}`,
  ].join("\n");
}

function rateLimitTable(r: PullResults): string {
  const l = r.limited;
  const rate = (l.bytesPerSecond / 1e6).toFixed(0);
  const row = (label: string, ms: number[], speedUp: string): string =>
    `| ${label} | ${cell(ms.map((m) => m / 1000), 2)} | ${cell(ms.map((m) => mbps(l.size, m)), 1)} | ${speedUp} |`;
  const single = l.single.map((s) => s.totalMs);
  const parallel = l.parallel.map((s) => s.totalMs);
  const ratio = median(single) / median(parallel);
  const perRep = l.parallel.map((p, i) => l.single[i]!.totalMs / p.totalMs);
  return [
    `### Parallel parts: ${formatBytes(l.size)} from a CDN that caps each connection at ${rate} MB/s`,
    "",
    "| | time (s) | MB/s | speed-up over one stream |",
    "|---|--:|--:|--:|",
    row("curl (one connection)", l.curl.map((c) => c.ms), "–"),
    row("ai-server, `AI_SERVER_PULL_CONNECTIONS=1`", single, "1"),
    row(`ai-server, ${r.connections} connections`, parallel, `${ratio.toFixed(2)} (${spread(perRep).min.toFixed(2)}–${spread(perRep).max.toFixed(2)})`),
    "",
    `- ${r.connections} connections / one stream: ${ratio.toFixed(2)}× (ratio of the medians of request → \`success\`; in brackets, the range of the per-repetition ratios) → ${verdict(ratio >= PARALLEL_GOAL)} (≥ ${PARALLEL_GOAL}×)`,
  ].join("\n");
}

function memoryTable(r: PullResults): string {
  const mib = (bytes: number): number => bytes / 2 ** 20;
  const rss = r.server.map((s) => s.rss);
  const growth = rss.map((m) => m.secondHalf - m.firstHalf);
  // What the second half of the download added, per byte it downloaded: memory that grows with the file shows here.
  const perByte = median(growth) / (r.size / 2);
  return [
    `### Memory: the server's resident set (VmRSS) while it pulls ${formatBytes(r.size)}, sampled every 100 ms`,
    "",
    "| before the pull (MiB) | peak, first half of the download (MiB) | peak, second half to `success` (MiB) | at `success` (MiB) | second half − first half (MiB) |",
    "|--:|--:|--:|--:|--:|",
    `| ${cell(rss.map((m) => mib(m.before)), 0)} | ${cell(rss.map((m) => mib(m.firstHalf)), 0)} | ${cell(rss.map((m) => mib(m.secondHalf)), 0)} | ` +
      `${cell(rss.map((m) => mib(m.after)), 0)} | ${cell(growth.map(mib), 1)} |`,
    "",
    `- the second half of the download (${formatBytes(r.size / 2)}) adds ${mib(median(growth)).toFixed(1)} MiB (median), ${(perByte * 100).toFixed(2)}% of its bytes → ` +
      `${perByte < FLAT_GOAL ? "flat" : "GROWS with the file"} (goal: < ${FLAT_GOAL * 100}%; the first half holds the fixed cost: buffers per connection, the hash worker)`,
  ].join("\n");
}
