// The simulated upstream's own count of running generations is what `npm run soak` holds the
// router to ("peak generations <= slots"), so it must free a slot the moment the engine learns
// its client is gone, whichever way the client went: a FIN (the socket's 'end') or a reset
// (RST, which a proxy sends when it drops a connection with response bytes still unread).
// A reset is known at read time, like a FIN, but the response's 'close' only follows in the
// loop's close phase: a request that arrived in the same read batch on another connection,
// after the reset, was counted while the dead one still held its slot.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { startSimUpstream, type SimUpstream } from '../../router/demo/sim-upstream.ts';
import { pollUntil } from '../helpers/poll.ts';

const MODEL = 'sim-model';

function chatRequest(port: number, id: string): string {
  const body = JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'hi' }] });
  return `POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1:${port}\r\ncontent-type: application/json\r\nx-request-id: ${id}\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

function open(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => {
      s.off('error', reject);
      resolve(s);
    });
    s.once('error', reject);
  });
}

/** Resolves with the response text once the sim has answered in full (content-length framing). */
function answer(s: Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const onData = (d: Buffer): void => {
      text += d.toString('utf8');
      const head = text.indexOf('\r\n\r\n');
      const len = /content-length: (\d+)/i.exec(text);
      if (head !== -1 && len && Buffer.byteLength(text) - head - 4 >= Number(len[1])) {
        s.off('data', onData);
        resolve(text);
      }
    };
    s.on('data', onData);
    s.once('error', reject);
  });
}

async function withSim(fn: (sim: SimUpstream) => Promise<void>): Promise<void> {
  const sim = await startSimUpstream({ model: MODEL, slots: 100 });
  try {
    await fn(sim);
  } finally {
    await sim.close();
  }
}

for (const how of ['reset', 'fin'] as const) {
  test(`a generation whose client ${how === 'reset' ? 'reset' : 'closed'} the connection is not counted with a request sent after it`, async () => {
    await withSim(async (sim) => {
      // B's connection is open and idle first, as a proxy's keep-alive pool keeps one.
      const a = await open(sim.port);
      const b = await open(sim.port);
      a.on('error', () => {});
      try {
        sim.pushFault({ kind: 'hang' });
        a.write(chatRequest(sim.port, 'A'));
        await sim.waitForRequests(1);
        await pollUntil('A holding its slot', () => (sim.inFlight() === 1 ? true : undefined), { tries: 200, everyMs: 10 });
        // A's end goes out first, B's request right after it, both before the sim reads either.
        if (how === 'reset') a.resetAndDestroy();
        else a.end();
        const answered = answer(b);
        b.write(chatRequest(sim.port, 'B'));
        assert.match(await answered, /^HTTP\/1\.1 200/);
        assert.equal(sim.peakInFlight(), 1, 'A and B were never generating at once: A was gone before B was sent');
        await pollUntil('every slot free', () => (sim.inFlight() === 0 ? true : undefined), { tries: 200, everyMs: 10 });
      } finally {
        a.destroy();
        b.destroy();
      }
    });
  });
}

test('with slotLimit, each moment above it names the requests that held a slot and their state', async () => {
  const sim = await startSimUpstream({ model: MODEL, slots: 100, slotLimit: 1 });
  const a = await open(sim.port);
  const b = await open(sim.port);
  try {
    sim.pushFault({ kind: 'hang' });
    a.write(chatRequest(sim.port, 'req-A'));
    await pollUntil('A holding its slot', () => (sim.inFlight() === 1 ? true : undefined), { tries: 200, everyMs: 10 });
    assert.deepEqual(sim.overLimit(), []);
    const answered = answer(b);
    b.write(chatRequest(sim.port, 'req-B'));
    await answered;
    const [report, ...more] = sim.overLimit();
    assert.equal(more.length, 0);
    assert.match(report!, /^2 at once: req-A \(\d+ ms, fault hang, no headers yet, socket open\); req-B \(/);
  } finally {
    a.destroy();
    b.destroy();
    await sim.close();
  }
});
