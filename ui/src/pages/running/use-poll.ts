import { useEffect, useRef, useState } from "preact/hooks";

/** What a poll knows: the last answer, the last failure (cleared by the next success), and a way to poll now. */
export interface Poll<T> {
  data: T | undefined;
  error: string | null;
  refresh: () => void;
}

/**
 * Calls `load` now and then `intervalMs` after each answer (never two at once), while the page is shown; a hidden
 * tab skips its turns. `load` may change between renders: the latest one is called.
 */
export function usePoll<T>(load: (signal: AbortSignal) => Promise<T>, intervalMs: number): Poll<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<string | null>(null);
  const latest = useRef(load);
  latest.current = load;
  const pollNow = useRef<() => void>(() => {});

  useEffect(() => {
    const controller = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    let running = false;
    const tick = async (): Promise<void> => {
      clearTimeout(timer);
      if (running || controller.signal.aborted) return;
      running = true;
      try {
        if (!document.hidden) {
          setData(await latest.current(controller.signal));
          setError(null);
        }
      } catch (failure) {
        if (!controller.signal.aborted) setError(failure instanceof Error ? failure.message : String(failure));
      } finally {
        running = false;
        if (!controller.signal.aborted) timer = setTimeout(() => void tick(), intervalMs);
      }
    };
    pollNow.current = () => void tick();
    void tick();
    return () => {
      controller.abort();
      clearTimeout(timer);
    };
  }, [intervalMs]);

  return { data, error, refresh: () => pollNow.current() };
}

/** The time now (ms), updated every `intervalMs`: for countdowns. */
export function useNow(intervalMs = 1000): number {
  const [now, setNow] = useState(Date.now);
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), intervalMs);
    return () => clearInterval(timer);
  }, [intervalMs]);
  return now;
}
