import type { PageProps } from "../../shell.js";

/** The models page. */
export function ModelsPage(_props: PageProps) {
  return <h1>Models</h1>;
}
