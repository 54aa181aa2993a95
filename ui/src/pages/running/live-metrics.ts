import { parsePrometheus, sumOf, type Sample } from "./prometheus.js";

/**
 * The charts' numbers, from GET /metrics scraped every few seconds (all models together): tokens generated per
 * second (the counter's growth between two scrapes), the mean time to first token of the generations that ended
 * between them (the histogram's sum and count growth), and the requests waiting at each scrape.
 */

/** The metric names the server exposes (vLLM's names with the `ai_server_` prefix; src/server/metrics.ts). */
export const METRIC = {
  generatedTokens: "ai_server_generated_tokens_total",
  ttftSum: "ai_server_time_to_first_token_seconds_sum",
  ttftCount: "ai_server_time_to_first_token_seconds_count",
  waiting: "ai_server_num_requests_waiting",
} as const;

/** How many points the charts keep: 150 scrapes 2 s apart are the last 5 minutes. */
export const HISTORY_POINTS = 150;

/** The totals one scrape read. */
export interface Scrape {
  /** Unix seconds. */
  time: number;
  generatedTokens: number;
  ttftSum: number;
  ttftCount: number;
  waiting: number;
}

/** The charts' columns, as uPlot takes them: times (unix seconds) and one value per time (null: nothing to show). */
export interface History {
  time: number[];
  tokensPerSecond: Array<number | null>;
  ttftSeconds: Array<number | null>;
  queueDepth: number[];
}

/** A scrape's totals from the metrics text. */
export function readScrape(text: string, time: number): Scrape {
  const samples: Sample[] = parsePrometheus(text);
  return {
    time,
    generatedTokens: sumOf(samples, METRIC.generatedTokens),
    ttftSum: sumOf(samples, METRIC.ttftSum),
    ttftCount: sumOf(samples, METRIC.ttftCount),
    waiting: sumOf(samples, METRIC.waiting),
  };
}

export function emptyHistory(): History {
  return { time: [], tokensPerSecond: [], ttftSeconds: [], queueDepth: [] };
}

/**
 * The history with one more point, from the scrape before (undefined for the first) and this one; the oldest point
 * goes once there are HISTORY_POINTS. A counter that went down (the server restarted) gives no rate for that step.
 */
export function addScrape(history: History, previous: Scrape | undefined, scrape: Scrape): History {
  const elapsed = previous ? scrape.time - previous.time : 0;
  const tokens = previous ? scrape.generatedTokens - previous.generatedTokens : -1;
  const count = previous ? scrape.ttftCount - previous.ttftCount : 0;
  const sum = previous ? scrape.ttftSum - previous.ttftSum : 0;
  const keep = (values: readonly (number | null)[]) => values.slice(Math.max(0, values.length + 1 - HISTORY_POINTS));
  return {
    time: [...keep(history.time), scrape.time] as number[],
    tokensPerSecond: [...keep(history.tokensPerSecond), elapsed > 0 && tokens >= 0 ? tokens / elapsed : null],
    ttftSeconds: [...keep(history.ttftSeconds), count > 0 && sum >= 0 ? sum / count : null],
    queueDepth: [...keep(history.queueDepth), scrape.waiting] as number[],
  };
}
