// Bounded polling for a condition: tests wait for events this way, never with a fixed sleep.

/** Polls `check` until it returns a value other than undefined; bounded by `tries`. */
export async function pollUntil<T>(what: string, check: () => Promise<T | undefined> | T | undefined, opts: { tries?: number; everyMs?: number } = {}): Promise<T> {
  const tries = opts.tries ?? 100;
  const everyMs = opts.everyMs ?? 100;
  for (let i = 0; i < tries; i++) {
    const v = await check();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`gave up waiting for ${what} after ${tries} polls`);
}
