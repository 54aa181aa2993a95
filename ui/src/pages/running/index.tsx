import type { PageProps } from "../../shell.js";

/** The running page. */
export function RunningPage(_props: PageProps) {
  return <h1>Running</h1>;
}
