import { useState } from "preact/hooks";
import { JobProgress } from "./job-progress.js";
import type { PullJobs } from "./use-pull-jobs.js";

/**
 * The pull form (any name the CLI takes) and the pulls in progress. Without an admin key the form is disabled and a
 * note says why (pulls need admin), and no job is listed.
 */
export function PullBox({ admin, pulls }: { admin: boolean; pulls: PullJobs }) {
  const [name, setName] = useState("");
  const [starting, setStarting] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const submit = async (event: Event): Promise<void> => {
    event.preventDefault();
    const model = name.trim();
    if (model === "" || starting) return;
    setStarting(true);
    setError(null);
    try {
      await pulls.start(model);
      setName("");
    } catch (failure) {
      setError(failure instanceof Error ? failure.message : String(failure));
    } finally {
      setStarting(false);
    }
  };

  const listProblem = pulls.problems[""];
  return (
    <section class="card models-pull" data-testid="models-pull" aria-labelledby="models-pull-title">
      <h2 id="models-pull-title">Pull a model</h2>
      <form class="row" onSubmit={submit}>
        <label for="models-pull-name" class="models-visually-hidden">Model to pull</label>
        <input
          id="models-pull-name"
          class="grow"
          value={name}
          onInput={(event) => setName(event.currentTarget.value)}
          placeholder="hf.co/org/repo:Q4_K_M, org/repo or llama3.2:1b"
          autocomplete="off"
          spellcheck={false}
          disabled={!admin}
          data-testid="pull-input"
        />
        <button type="submit" class="primary" disabled={!admin || starting || name.trim() === ""} data-testid="pull-button">
          {starting ? "Starting…" : "Pull"}
        </button>
      </form>
      {admin ? (
        <p class="muted models-hint">
          A Hugging Face repository (<code>hf.co/org/repo</code> or <code>org/repo</code>, optionally <code>:quantization</code> or
          <code>:file.gguf</code>) or an Ollama library name. The server picks the file that fits its memory and says why.
        </p>
      ) : (
        <p class="muted" data-testid="models-admin-note">Pulling, copying and deleting models need an admin key; this session's key is for inference only.</p>
      )}
      {error && <p class="error" role="alert" data-testid="models-pull-error">{error}</p>}
      {listProblem && <p class="error" role="alert">{listProblem}</p>}
      {pulls.jobs.length > 0 && (
        <div class="models-jobs">
          {pulls.jobs.map((job) => (
            <JobProgress
              key={job.id}
              job={job}
              problem={pulls.problems[job.id]}
              onCancel={() => void pulls.cancel(job.id)}
              onDismiss={() => pulls.dismiss(job.id)}
            />
          ))}
        </div>
      )}
    </section>
  );
}
