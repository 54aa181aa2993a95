import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { api } from "../../api.js";
import type { ModelSummary } from "./types.js";

/** The local models (GET /api/tags), and a way to read them again after a pull, copy or delete. */
export interface ModelsState {
  models: ModelSummary[] | null;
  error: string | null;
  reload: () => void;
}

/** Loads the model list on mount and at each `reload()`; an answer that arrives after a newer request is dropped. */
export function useModels(): ModelsState {
  const [models, setModels] = useState<ModelSummary[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const latest = useRef<AbortController | null>(null);

  const reload = useCallback(() => {
    latest.current?.abort();
    const controller = new AbortController();
    latest.current = controller;
    api<{ models: ModelSummary[] }>("GET", "/api/tags", undefined, controller.signal)
      .then((body) => {
        if (controller.signal.aborted) return;
        setModels(body.models);
        setError(null);
      })
      .catch((failure: unknown) => {
        if (controller.signal.aborted) return;
        setError(failure instanceof Error ? failure.message : String(failure));
      });
  }, []);

  useEffect(() => {
    reload();
    return () => latest.current?.abort();
  }, [reload]);

  return { models, error, reload };
}
