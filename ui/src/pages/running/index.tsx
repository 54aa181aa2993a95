import type { PageProps } from "../../shell.js";
import { LiveCharts } from "./live-charts.js";
import { LoadedModels } from "./loaded-models.js";
import "./running.css";

/** The Running page (#/running): what is loaded now, its memory, slots, queue and keep-alive, and live charts. */
export function RunningPage(_props: PageProps) {
  return (
    <div class="running-page">
      <h1>Running</h1>
      <LoadedModels />
      <LiveCharts />
    </div>
  );
}
