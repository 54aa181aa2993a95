import type { PageProps } from "../../shell.js";

/** The admin page. */
export function AdminPage(_props: PageProps) {
  return <h1>Admin</h1>;
}
