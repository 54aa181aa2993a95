import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { api, request, sseEvents } from "../../api.js";
import { isFinished, type Job } from "./types.js";

/** The pulls this page shows, and what a person can do with them. */
export interface PullJobs {
  /** Newest first: the running ones (those found at open included) and those that ended here, until dismissed. */
  jobs: Job[];
  /** Per job id: why its progress could not be followed, or why a cancel failed. */
  problems: Record<string, string>;
  /** Starts a pull (POST /api/jobs) and follows it; throws the server's refusal (e.g. a bad name). */
  start: (model: string) => Promise<void>;
  cancel: (id: string) => Promise<void>;
  dismiss: (id: string) => void;
}

/** How often a broken event stream of a job still running is opened again before giving up. */
const RECONNECTS = 3;

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Pull jobs followed through `GET /api/jobs/{id}/events` (server-sent events read through fetch, since EventSource
 * cannot send the key). When `enabled` (an admin session), the jobs already queued or running are listed and followed
 * at once, so a reload keeps showing their progress. `onSucceeded` runs when a followed pull ends well.
 */
export function usePullJobs(enabled: boolean, onSucceeded: (job: Job) => void): PullJobs {
  const [jobs, setJobs] = useState<Job[]>([]);
  const [problems, setProblems] = useState<Record<string, string>>({});
  const streams = useRef(new Map<string, AbortController>());
  const dismissed = useRef(new Set<string>());
  const succeeded = useRef(onSucceeded);
  succeeded.current = onSucceeded;

  const upsert = useCallback((job: Job) => {
    if (dismissed.current.has(job.id)) return;
    setJobs((list) => [job, ...list.filter((other) => other.id !== job.id)].sort((a, b) => b.created_at.localeCompare(a.created_at)));
  }, []);

  const setProblem = useCallback((id: string, text: string | null) => {
    setProblems((all) => {
      const { [id]: _old, ...rest } = all;
      return text === null ? rest : { ...rest, [id]: text };
    });
  }, []);

  const follow = useCallback(
    async (id: string) => {
      if (streams.current.has(id)) return;
      const controller = new AbortController();
      streams.current.set(id, controller);
      try {
        for (let attempt = 0; ; attempt++) {
          let last: Job | undefined;
          try {
            const response = await request("GET", `/api/jobs/${encodeURIComponent(id)}/events`, undefined, controller.signal);
            for await (const { event, data } of sseEvents(response)) {
              if (event !== "job") continue;
              last = JSON.parse(data) as Job;
              upsert(last);
              setProblem(id, null);
              if (isFinished(last)) break;
            }
          } catch (error) {
            if (controller.signal.aborted) return;
            if (attempt >= RECONNECTS) throw error;
          }
          if (last && isFinished(last)) {
            if (last.state === "succeeded") succeeded.current(last);
            return;
          }
          if (attempt >= RECONNECTS) throw new Error("the progress stream ended before the pull did");
          await new Promise((resolve) => setTimeout(resolve, 1000 * (attempt + 1)));
          if (controller.signal.aborted) return;
        }
      } catch (error) {
        if (!controller.signal.aborted) setProblem(id, `Lost the pull's progress: ${message(error)}. Reload the page to follow it again.`);
      } finally {
        controller.abort();
        if (streams.current.get(id) === controller) streams.current.delete(id);
      }
    },
    [upsert, setProblem],
  );

  useEffect(() => {
    const open = streams.current;
    if (enabled) {
      const controller = new AbortController();
      open.set("", controller); // the listing itself, aborted with the streams on unmount
      api<{ jobs: Job[] }>("GET", "/api/jobs?state=queued,running", undefined, controller.signal)
        .then((body) => {
          for (const job of body.jobs) {
            upsert(job);
            void follow(job.id);
          }
        })
        .catch((error: unknown) => {
          if (!controller.signal.aborted) setProblem("", `Could not list the running pulls: ${message(error)}`);
        })
        .finally(() => open.get("") === controller && open.delete(""));
    }
    return () => {
      for (const controller of open.values()) controller.abort();
      open.clear();
    };
  }, [enabled, upsert, follow, setProblem]);

  const start = useCallback(
    async (model: string) => {
      const job = await api<Job>("POST", "/api/jobs", { type: "pull", model });
      dismissed.current.delete(job.id);
      upsert(job);
      void follow(job.id);
    },
    [upsert, follow],
  );

  const cancel = useCallback(
    async (id: string) => {
      try {
        const ended = await api<Job>("DELETE", `/api/jobs/${encodeURIComponent(id)}`);
        streams.current.get(id)?.abort();
        upsert(ended);
        setProblem(id, null);
      } catch (error) {
        setProblem(id, `Could not cancel: ${message(error)}`);
      }
    },
    [upsert, setProblem],
  );

  const dismiss = useCallback((id: string) => {
    dismissed.current.add(id);
    streams.current.get(id)?.abort();
    setJobs((list) => list.filter((job) => job.id !== id));
    setProblem(id, null);
  }, [setProblem]);

  return { jobs, problems, start, cancel, dismiss };
}
