import { normalizeModelName } from "../domain/model-name.js";
import type { ModelRecord } from "../domain/model.js";
import type { ModelStore } from "../store/model-store.js";

/**
 * Configured aliases (AI_SERVER_ALIASES): extra names that follow their model, resolved when a name is looked up.
 * A real model of the same name wins over an alias. Unlike `/api/copy` (a second name for today's manifest), an
 * alias follows its target when that is re-created or re-pulled. Either way the scheduler shares one loaded
 * instance, since instances are keyed by the weights.
 */
export class ModelAliases {
  private readonly targets: Map<string, string>;
  private lookup?: (name: string) => ModelRecord | undefined;

  constructor(aliases: Readonly<Record<string, string>>) {
    this.targets = new Map(Object.entries(aliases).map(([alias, target]) => [normalizeModelName(alias), normalizeModelName(target)]));
  }

  /** Makes `store.get` (and so `require`) resolve aliases. */
  install(store: ModelStore): void {
    if (this.targets.size === 0) return;
    const get = store.get.bind(store);
    this.lookup = get;
    store.get = (name: string): ModelRecord | undefined => get(name) ?? this.resolve(name);
  }

  /** The target of `name` when `name` is only an alias (no real model has that name). */
  targetOf(name: string): string | undefined {
    const normalized = normalizeModelName(name);
    const target = this.targets.get(normalized);
    return target !== undefined && this.lookup?.(normalized) === undefined ? target : undefined;
  }

  private resolve(name: string): ModelRecord | undefined {
    const target = this.targets.get(normalizeModelName(name));
    return target === undefined ? undefined : this.lookup?.(target);
  }
}
