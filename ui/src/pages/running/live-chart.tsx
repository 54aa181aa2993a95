import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { useThemeColors, withAlpha, type ThemeColors } from "./theme-colors.js";

interface Props {
  title: string;
  /** The series' name in the legend, e.g. "tokens/s". */
  label: string;
  testId: string;
  /** Unix seconds. */
  time: readonly number[];
  values: ReadonlyArray<number | null>;
  /** A value as the axis and legend show it. */
  format: (value: number) => string;
  /** Values only now and then (null between): drawn as points joined across the gaps. */
  sparse?: boolean;
  /** Whole numbers only (a count): no ticks between them. */
  integer?: boolean;
}

const HEIGHT = 180;
/** Tick steps for a count. */
const INTEGER_STEPS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000];

/**
 * One live line chart (uPlot, drawn on a canvas): the last minutes of one series against time, in the theme's
 * colours (drawn again when the theme changes), as wide as its card (it follows the window's size).
 */
export function LiveChart({ title, label, testId, time, values, format, sparse = false, integer = false }: Props) {
  const host = useRef<HTMLDivElement>(null);
  const chart = useRef<uPlot | null>(null);
  const colors = useThemeColors();
  const data = (): uPlot.AlignedData => [time as number[], values as Array<number | null>];

  useEffect(() => {
    const element = host.current;
    if (!element) return;
    const plot = new uPlot(chartOptions({ label, format, sparse, integer }, colors, Math.max(200, element.clientWidth)), data(), element);
    chart.current = plot;
    const resize = new ResizeObserver(() => plot.setSize({ width: Math.max(200, element.clientWidth), height: HEIGHT }));
    resize.observe(element);
    return () => {
      resize.disconnect();
      plot.destroy();
      chart.current = null;
    };
    // The chart is made again only when its look changes; new data goes through setData below.
  }, [colors, label, sparse, integer]);

  useEffect(() => {
    chart.current?.setData(data());
  }, [time, values]);

  // What the chart shows, also as attributes (how many values, the largest) for tests and tools that read the page.
  const shown = values.filter((v): v is number => v !== null);
  return (
    <figure class="card running-chart" data-testid={testId} data-points={shown.length} data-max={shown.length > 0 ? Math.max(...shown) : undefined}>
      <figcaption class="running-chart-title">{title}</figcaption>
      <div ref={host} class="running-chart-plot" role="img" aria-label={`${title}, last ${values.length} samples`} />
    </figure>
  );
}

function chartOptions({ label, format, sparse, integer }: Pick<Props, "label" | "format" | "sparse" | "integer">, colors: ThemeColors, width: number): uPlot.Options {
  const axis = (values?: uPlot.Axis["values"]): uPlot.Axis => ({
    stroke: colors.muted,
    grid: { stroke: colors.border, width: 1 },
    ticks: { stroke: colors.border, width: 1 },
    ...(values && { values }),
  });
  return {
    width,
    height: HEIGHT,
    legend: { show: true },
    cursor: { drag: { x: false, y: false } },
    scales: { x: { time: true }, y: { range: (_plot, _min, max) => [0, max > 0 ? max * 1.15 : 1] } },
    axes: [axis(), { ...axis((_plot, ticks) => ticks.map(format)), size: 60, ...(integer && { incrs: INTEGER_STEPS }) }],
    series: [
      {},
      {
        label,
        stroke: colors.accent,
        ...(!sparse && { fill: withAlpha(colors.accent, 0.15) }),
        width: 2,
        spanGaps: sparse === true,
        points: { show: sparse === true, size: 5, stroke: colors.accent, fill: colors.accent },
        value: (_plot, value) => (value === null || value === undefined ? "–" : format(value)),
      },
    ],
  };
}
