// Messages between the router's main thread and the request-log worker that owns the database.
import type { LogStateChange } from './database.ts';
import type { RequestRow, WireRow } from './row.ts';
import type { WriterConfig } from './writer.ts';

export type ToWorker =
  | { t: 'config'; cfg: WriterConfig }
  /** The rows as flat arrays of column values (row.ts): structured-cloned, nothing to parse. */
  | { t: 'batch'; seq: number; rows: WireRow[] }
  /** Send back each written batch's rows (someone follows the live feed). */
  | { t: 'tail'; on: boolean }
  | { t: 'close' };

export type FromWorker =
  | { t: 'ack'; seq: number; written: number; dropped: number }
  | { t: 'state'; change: LogStateChange }
  | { t: 'rows'; rows: RequestRow[] }
  | { t: 'closed' };

export interface WorkerData {
  path: string;
  cfg: WriterConfig;
}
