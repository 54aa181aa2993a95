import { formatBytes, formatSeconds } from "../../format.js";
import { href } from "../../router.js";
import { isFinished, type Job, type JobFile, type PullChoice } from "./types.js";

/** What a pull job's state reads as. */
const STATE_LABELS: Record<Job["state"], string> = {
  queued: "Queued",
  running: "Running",
  succeeded: "Done",
  failed: "Failed",
  cancelled: "Cancelled",
};

/**
 * One pull as it goes: the file and quantization chosen and why, warnings, per-file progress bars, speed and time
 * left, the status line, and cancel (while it runs) or dismiss (once it ended). Everything is shown as text.
 */
export function JobProgress({ job, problem, onCancel, onDismiss }: { job: Job; problem?: string | undefined; onCancel: () => void; onDismiss: () => void }) {
  const active = !isFinished(job);
  const titleId = `models-job-${job.id}`;
  return (
    <article class="models-job" data-testid="models-job" data-job={job.id} data-state={job.state} aria-labelledby={titleId}>
      <header class="row">
        <strong id={titleId} class="grow models-job-model">{job.model}</strong>
        <span class={`models-badge models-state-${job.state}`} data-testid="models-job-state">{STATE_LABELS[job.state]}</span>
        {active ? (
          <button type="button" class="danger" onClick={onCancel} data-testid="models-pull-cancel">Cancel</button>
        ) : (
          <button type="button" class="quiet" onClick={onDismiss} data-testid="models-job-dismiss" aria-label={`Dismiss the pull of ${job.model}`}>Dismiss</button>
        )}
      </header>
      <p class="models-job-status" data-testid="models-job-status">
        {job.status}
        {active && job.notice && <span class="muted"> · {job.notice}</span>}
      </p>
      {job.choice && <Choice choice={job.choice} />}
      {job.warnings.length > 0 && (
        <ul class="models-job-warnings" data-testid="models-job-warnings">
          {job.warnings.map((warning) => <li>{warning}</li>)}
        </ul>
      )}
      {job.files.length > 0 && <Files files={job.files} />}
      {job.quantize && (
        <label class="models-job-quantize">
          <span>Quantizing: {job.quantize.completed} of {job.quantize.total} tensors</span>
          <progress value={job.quantize.completed} max={Math.max(job.quantize.total, 1)} />
        </label>
      )}
      {active && job.total > 0 && (
        <p class="muted models-job-totals" data-testid="models-job-totals">
          {formatBytes(job.completed)} of {formatBytes(job.total)}
          {job.bytes_per_second > 0 && <> · {formatBytes(job.bytes_per_second)}/s</>}
          {job.eta_seconds !== null && <> · {formatSeconds(job.eta_seconds)} left</>}
        </p>
      )}
      {job.state === "succeeded" && (
        <p class="ok" data-testid="models-job-done">
          Pulled <a href={href("models", job.model)}>{job.model}</a>.
        </p>
      )}
      {job.state === "failed" && (
        <p class="error" role="alert" data-testid="models-job-error">{job.error?.message ?? "The pull failed."}</p>
      )}
      {problem && <p class="error" role="alert">{problem}</p>}
    </article>
  );
}

/** The file chosen, its quantization and source, and the server's sentence saying why. */
function Choice({ choice }: { choice: PullChoice }) {
  return (
    <div class="models-job-choice" data-testid="models-job-choice">
      <dl class="models-facts">
        <dt>File</dt>
        <dd class="mono">{choice.file} ({formatBytes(choice.size)})</dd>
        <dt>Quantization</dt>
        <dd>
          {choice.quantization ?? "–"}
          {choice.quantize_to && <> → {choice.quantize_to} (quantized here)</>}
        </dd>
        <dt>From</dt>
        <dd class="mono">
          {choice.repo}
          {choice.substituted_from && <span class="muted"> (for {choice.substituted_from})</span>}
        </dd>
      </dl>
      <p class="models-job-reason" data-testid="models-job-reason">{choice.reason}</p>
    </div>
  );
}

const FILE_STATES: Record<JobFile["state"], string> = { pending: "waiting", downloading: "downloading", verifying: "verifying", done: "done" };

function Files({ files }: { files: JobFile[] }) {
  return (
    <div class="table-scroll">
      <table class="models-job-files">
        <thead>
          <tr>
            <th scope="col">File</th>
            <th scope="col">Progress</th>
            <th scope="col">State</th>
          </tr>
        </thead>
        <tbody>
          {files.map((file) => (
            <tr data-testid="models-job-file" key={file.name}>
              <td class="mono models-job-file-name">{file.name}</td>
              <td>
                <progress
                  value={file.completed}
                  max={Math.max(file.total, 1)}
                  aria-label={`${file.name}: ${formatBytes(file.completed)} of ${formatBytes(file.total)}`}
                  data-testid="models-job-file-progress"
                />
                <div class="muted models-job-bytes">{formatBytes(file.completed)} / {formatBytes(file.total)}</div>
              </td>
              <td>
                {FILE_STATES[file.state]}
                {file.source && file.source !== "download" && <span class="muted"> ({file.source === "store" ? "already stored" : "from the Hugging Face cache"})</span>}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
