// What a client may read of an upstream failure in a 503 (router/upstream/redact.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { clientErrorDetail } from '../../router/upstream/redact.ts';

test('client error detail – the route and the status or code stay; body text, addresses and redirect targets go', () => {
  const cases: Array<[string, string]> = [
    ['spark: HTTP 500: {"error":"my secret prompt was too long"}', 'spark: HTTP 500'],
    ['spark: HTTP 500: CUDA error: an illegal memory access was encountered [body cut at 4096 bytes]', 'spark: HTTP 500 (CUDA error)'],
    ['win-5090: HTTP 429: slow down, you sent: hello', 'win-5090: HTTP 429'],
    ['ubuntu-6000: ECONNREFUSED: connect ECONNREFUSED 10.8.2.6:8000', 'ubuntu-6000: ECONNREFUSED'],
    ['ubuntu-6000: UND_ERR_SOCKET: other side closed', 'ubuntu-6000: UND_ERR_SOCKET'],
    ['spark: HTTP 302 redirect to http://10.8.2.6:9000/login?next=/v1, not followed', 'spark: HTTP 302 redirect, not followed'],
    // The router's own words are kept as they are.
    ['spark: no response within 30000 ms (UND_ERR_HEADERS_TIMEOUT)', 'spark: no response within 30000 ms (UND_ERR_HEADERS_TIMEOUT)'],
    ['ubuntu-6000 has every slot and queue place taken', 'ubuntu-6000 has every slot and queue place taken'],
    ['spark said busy', 'spark said busy'],
    ['request deadline passed while queued', 'request deadline passed while queued'],
    ['spark: HTTP 502 with an unreadable body [body timed out]', 'spark: HTTP 502 with an unreadable body [body timed out]'],
  ];
  for (const [detail, shown] of cases) assert.equal(clientErrorDetail(detail), shown, detail);
});
