import os from "node:os";
import { InvalidRequestError } from "../domain/errors.js";
import type { Engine, EngineName, LoadedModel, LoadSpec, MemoryEstimate, UPSTREAM_ENGINE } from "./engine.js";

/** Every engine a LoadSpec can name: the local ones, and the upstream engine (remote endpoints). */
type RoutedName = EngineName | typeof UPSTREAM_ENGINE;

/**
 * One Engine for the scheduler that serves each model with the engine its spec names (a model's `engine`
 * parameter), else with the default. The other engines are opened on first use; one that cannot be opened here
 * (say, no llama-server build) fails the loads that ask for it with the reason, and is tried again next time.
 */
export class EngineRouter implements Engine {
  private readonly opened = new Map<RoutedName, Promise<Engine>>();

  constructor(
    private readonly fallback: Engine & { readonly name: EngineName },
    private readonly others: ReadonlyMap<RoutedName, () => Promise<Engine>>,
  ) {
    this.opened.set(fallback.name, Promise.resolve(fallback));
  }

  get name(): EngineName {
    return this.fallback.name;
  }

  async load(spec: LoadSpec, signal?: AbortSignal): Promise<LoadedModel> {
    return (await this.pick(spec)).load(spec, signal);
  }

  async estimateMemory(spec: LoadSpec): Promise<MemoryEstimate> {
    return (await this.pick(spec)).estimateMemory(spec);
  }

  /** The default engine's view of the machine (every engine here runs on the same one). */
  async capacity(): Promise<MemoryEstimate> {
    return (await this.fallback.capacity?.()) ?? { ram: os.totalmem(), vram: 0 };
  }

  async close(): Promise<void> {
    const engines = await Promise.all([...this.opened.values()].map((engine) => engine.catch(() => undefined)));
    for (const engine of new Set(engines)) await engine?.close();
    this.opened.clear();
  }

  private pick(spec: LoadSpec): Promise<Engine> {
    const name = spec.engine ?? this.fallback.name;
    const open = this.opened.get(name);
    if (open) return open;
    const factory = this.others.get(name);
    if (!factory) return Promise.reject(new InvalidRequestError(`the ${name} engine is not available in this server`));
    const opening = factory().catch((error: unknown) => {
      this.opened.delete(name);
      const reason = error instanceof Error ? error.message : String(error);
      throw new InvalidRequestError(`this model asks for the ${name} engine, which cannot run here: ${reason}`);
    });
    this.opened.set(name, opening);
    return opening;
  }
}
