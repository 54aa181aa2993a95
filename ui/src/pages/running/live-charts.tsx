import { useState } from "preact/hooks";
import { request } from "../../api.js";
import { formatNumber } from "../../format.js";
import { LiveChart } from "./live-chart.js";
import { addScrape, emptyHistory, readScrape, type History, type Scrape } from "./live-metrics.js";
import { usePoll } from "./use-poll.js";

const SCRAPE_EVERY_MS = 2000;

/**
 * What the charts have gathered, kept while the dashboard is open (leaving the page and coming back keeps the
 * minutes already seen; nothing is scraped meanwhile).
 */
let kept: { history: History; last: Scrape | undefined } = { history: emptyHistory(), last: undefined };

/** The live charts: tokens/s, mean time to first token and queue depth, from GET /metrics every 2 s. */
export function LiveCharts() {
  const [history, setHistory] = useState(kept.history);
  const { error } = usePoll(async (signal) => {
    const text = await (await request("GET", "/metrics", undefined, signal)).text();
    const scrape = readScrape(text, Date.now() / 1000);
    kept = { history: addScrape(kept.history, kept.last, scrape), last: scrape };
    setHistory(kept.history);
  }, SCRAPE_EVERY_MS);
  return (
    <section aria-labelledby="running-charts-title">
      <h2 id="running-charts-title">Live, all models</h2>
      {error && <p class="error" role="alert">The metrics could not be read: {error}</p>}
      <div class="running-charts">
        <LiveChart
          title="Tokens generated per second"
          label="tokens/s"
          testId="running-chart-tokens"
          time={history.time}
          values={history.tokensPerSecond}
          format={(v) => formatNumber(v, v < 10 ? 1 : 0)}
        />
        <LiveChart
          title="Time to first token (mean)"
          label="seconds"
          testId="running-chart-ttft"
          time={history.time}
          values={history.ttftSeconds}
          format={formatLatency}
          sparse
        />
        <LiveChart
          title="Requests waiting"
          label="queued"
          testId="running-chart-queue"
          time={history.time}
          values={history.queueDepth}
          format={(v) => formatNumber(v)}
          integer
        />
      </div>
      <p class="muted running-note">
        Tokens are counted when each generation ends; the time to first token includes the wait in the queue and the model's load.
      </p>
    </section>
  );
}

function formatLatency(seconds: number): string {
  return seconds < 1 ? `${formatNumber(seconds * 1000)} ms` : `${formatNumber(seconds, seconds < 10 ? 2 : 1)} s`;
}
