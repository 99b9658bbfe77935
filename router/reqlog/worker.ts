// The request-log worker thread: it alone opens requests.db for writing, so batching, fsync,
// WAL checkpoints, cost pricing, payload compression and retention all happen off the
// router's event loop. Messages are handled one at a time, in order.
import { parentPort, workerData } from 'node:worker_threads';
import { LogDatabase } from './database.ts';
import type { FromWorker, ToWorker, WorkerData } from './protocol.ts';
import { apiRow, storedRowOf } from './row.ts';
import { LOG_WORKER_NICE, lowerThreadPriority } from './thread-priority.ts';
import { priceRow } from './writer.ts';

// Routing comes first: this thread writes when a core is free (thread-priority.ts).
lowerThreadPriority(LOG_WORKER_NICE);

const port = parentPort!;
const data = workerData as WorkerData;
let cfg = data.cfg;
let tail = false;
const post = (m: FromWorker) => port.postMessage(m);
const db = new LogDatabase(data.path, (change) => post({ t: 'state', change }));
// Opened at start, so a data directory that cannot be written is reported at once.
if (cfg.request_log.enabled) db.open();

// Retention also runs while no request arrives.
const timer = setInterval(() => db.tick(cfg), 60_000);

port.on('message', (m: ToWorker) => {
  switch (m.t) {
    case 'config':
      cfg = m.cfg;
      return;
    case 'tail':
      tail = m.on;
      return;
    case 'batch': {
      const result = db.writeRows(m.rows, cfg);
      post({ t: 'ack', seq: m.seq, written: result.rows?.length ?? 0, dropped: result.dropped });
      // The live feed shows every finished request, written or not.
      if (tail) post({ t: 'rows', rows: (result.rows ?? m.rows.map((w) => (priceRow(w, cfg.pricing), w))).map((w) => apiRow(storedRowOf(w))) });
      return;
    }
    case 'close':
      clearInterval(timer);
      db.close();
      post({ t: 'closed' });
      port.close();
      return;
  }
});
