import { useEffect, useState } from "preact/hooks";
import { api } from "../../api.js";

/** A local model as GET /api/tags lists it (the fields the playground shows). */
export interface ModelEntry {
  name: string;
  details?: { parameter_size?: string; quantization_level?: string; family?: string };
}

/** The models this session may chat with (GET /api/tags), or why they could not be listed. */
export function useModels(): { models: ModelEntry[] | null; error: string | null } {
  const [models, setModels] = useState<ModelEntry[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    const controller = new AbortController();
    api<{ models: ModelEntry[] }>("GET", "/api/tags", undefined, controller.signal)
      .then((body) => setModels(body.models))
      .catch((e: unknown) => {
        if (!controller.signal.aborted) setError(e instanceof Error ? e.message : String(e));
      });
    return () => controller.abort();
  }, []);
  return { models, error };
}

const capabilitiesCache = new Map<string, Promise<string[]>>();

/** A model's capabilities from POST /api/show (`completion`, `tools`, `thinking`, …); [] until known or on error. */
export function useCapabilities(model: string): string[] {
  const [capabilities, setCapabilities] = useState<{ model: string; list: string[] }>({ model: "", list: [] });
  useEffect(() => {
    if (model === "") return;
    let current = true;
    let request = capabilitiesCache.get(model);
    if (!request) {
      request = api<{ capabilities?: string[] }>("POST", "/api/show", { model }).then((show) => show.capabilities ?? []);
      request.catch(() => capabilitiesCache.delete(model));
      capabilitiesCache.set(model, request);
    }
    request.then(
      (list) => current && setCapabilities({ model, list }),
      () => current && setCapabilities({ model, list: [] }),
    );
    return () => {
      current = false;
    };
  }, [model]);
  return capabilities.model === model ? capabilities.list : [];
}
