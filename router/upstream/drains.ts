// Which routes the operator drained. One router keeps them in memory; replicas share them
// through Redis (router/cluster/shared-drains.ts). Keyed by route name, so a drain outlives a
// reload that changes the route's settings.
export interface DrainStore {
  isDrained(route: string): boolean;
  setDrained(route: string, drained: boolean): void;
}

export class LocalDrains implements DrainStore {
  readonly #drained = new Set<string>();

  isDrained(route: string): boolean {
    return this.#drained.has(route);
  }

  setDrained(route: string, drained: boolean): void {
    if (drained) this.#drained.add(route);
    else this.#drained.delete(route);
  }
}
