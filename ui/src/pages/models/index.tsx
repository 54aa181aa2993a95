import { useSession } from "../../session.js";
import type { PageProps } from "../../shell.js";
import { ModelDetailsView } from "./model-details.js";
import { ModelList } from "./model-list.js";
import { PullBox } from "./pull-box.js";
import { useModels } from "./use-models.js";
import { usePullJobs } from "./use-pull-jobs.js";
import "./models.css";

/**
 * The models page: the pull box and the local models at `#/models`, one model's details at `#/models/<name>`.
 * Pulling, copying and deleting need an admin key (the server's route access); other sessions see a note instead.
 */
export function ModelsPage({ route }: PageProps) {
  const { session } = useSession();
  const admin = session.scope === "admin";
  // A name is one encoded segment; a hand-typed `#/models/hf.co/org/repo` arrives split, so join it back.
  const name = route.length > 0 ? route.join("/") : undefined;
  return name !== undefined && name !== "" ? <ModelDetailsView name={name} admin={admin} /> : <ModelsOverview admin={admin} />;
}

function ModelsOverview({ admin }: { admin: boolean }) {
  const { models, error, reload } = useModels();
  const pulls = usePullJobs(admin, reload);
  return (
    <div class="models-page">
      <h1>Models</h1>
      <PullBox admin={admin} pulls={pulls} />
      <ModelList models={models} error={error} />
    </div>
  );
}
