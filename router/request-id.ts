// Request ids the router generates: UUID version 7 (RFC 9562), a 48-bit millisecond time then
// random bits. Ids made later sort after earlier ones, so the request log's id index grows at
// its right edge instead of dirtying a random page per request (a random UUID's cost in
// every write), and an id alone tells roughly when the request came.
import { randomFillSync } from 'node:crypto';

const HEX: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
// Random bytes drawn 256 ids at a time: one call into the OS per batch, not per request.
const pool = Buffer.alloc(10 * 256);
let used = pool.length;

export function uuidv7(now = Date.now()): string {
  if (used === pool.length) {
    randomFillSync(pool);
    used = 0;
  }
  const r = used;
  used += 10;
  const b = new Array<string>(16);
  // 48-bit big-endian milliseconds.
  let t = now;
  for (let i = 5; i >= 0; i--) {
    b[i] = HEX[t % 256]!;
    t = Math.floor(t / 256);
  }
  b[6] = HEX[0x70 | (pool[r]! & 0x0f)]!; // version 7
  b[7] = HEX[pool[r + 1]!]!;
  b[8] = HEX[0x80 | (pool[r + 2]! & 0x3f)]!; // variant 10
  for (let i = 9; i < 16; i++) b[i] = HEX[pool[r + i - 6]!]!;
  return `${b[0]}${b[1]}${b[2]}${b[3]}-${b[4]}${b[5]}-${b[6]}${b[7]}-${b[8]}${b[9]}-${b[10]}${b[11]}${b[12]}${b[13]}${b[14]}${b[15]}`;
}
