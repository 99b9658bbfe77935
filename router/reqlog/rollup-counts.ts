// What one rollup row counts (schema.ts), as the writer folds a batch into it and the reader
// sums rows into a range's points: request, error and token counts, the cost-equivalent, and the
// latency histogram (latency.ts). One shape and one addition for both sides.
import { LATENCY_BUCKETS } from './latency.ts';

export interface RollupCounts {
  requests: number;
  errors: number;
  prompt: number;
  completion: number;
  cost: number;
  priced: number;
  hist: number[];
}

export function emptyCounts(): RollupCounts {
  return { requests: 0, errors: 0, prompt: 0, completion: 0, cost: 0, priced: 0, hist: new Array<number>(LATENCY_BUCKETS).fill(0) };
}

/** Adds `from` into `into`, histogram bucket by bucket. */
export function addCounts(into: RollupCounts, from: RollupCounts): void {
  into.requests += from.requests;
  into.errors += from.errors;
  into.prompt += from.prompt;
  into.completion += from.completion;
  into.cost += from.cost;
  into.priced += from.priced;
  for (let h = 0; h < LATENCY_BUCKETS; h++) into.hist[h]! += from.hist[h]!;
}
