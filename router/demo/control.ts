// The demo's own controls, mounted at /demo on the demo router behind the admin token: break
// and mend a simulated GPU while the demo runs, and the stand-in for SSH that lets the
// watchdog's recovery commands act on the simulators.
//   POST /demo/break/:route    the machine goes down (connections refused)
//   POST /demo/cuda/:route     the GPU is poisoned: requests and probes answer vLLM's CUDA error
//   POST /demo/bad-json/:route the next answer ignores the requested JSON schema
//   POST /demo/mend/:route     back to normal
//   GET  /demo                 each simulator's state
import express, { type Router } from 'express';
import { requireAdminToken } from '../admin/auth.ts';
import { RouterError } from '../errors.ts';
import type { HostConfig } from '../policy/types.ts';
import type { RemoteOptions, RemoteResult } from '../recovery/ssh-exec.ts';
import type { SimUpstream } from './sim-upstream.ts';

export type SimState = 'up' | 'down' | 'cuda';

export class DemoLab {
  readonly #state = new Map<string, SimState>();

  constructor(readonly sims: Record<string, SimUpstream>) {
    for (const name of Object.keys(sims)) this.#state.set(name, 'up');
  }

  #sim(route: string): SimUpstream {
    const s = Object.hasOwn(this.sims, route) ? this.sims[route] : undefined;
    if (!s) throw new RouterError('not_found', `No simulated route named "${route}". Routes: ${Object.keys(this.sims).join(', ')}.`);
    return s;
  }

  async break(route: string): Promise<void> {
    await this.#sim(route).stop();
    this.#state.set(route, 'down');
  }

  cuda(route: string): void {
    const s = this.#sim(route);
    s.setHealth('cuda');
    s.setFault({ kind: 'cuda' });
    this.#state.set(route, 'cuda');
  }

  badJson(route: string): void {
    this.#sim(route).pushFault({ kind: 'reply', content: 'I looked at the snapshot: there is probably someone there.' });
  }

  async mend(route: string): Promise<void> {
    const s = this.#sim(route);
    s.setFault(null);
    s.setHealth(null);
    await s.restart();
    this.#state.set(route, 'up');
  }

  view(): Array<{ route: string; state: SimState; url: string; in_flight: number }> {
    return Object.entries(this.sims).map(([route, s]) => ({ route, state: this.#state.get(route)!, url: s.url, in_flight: s.inFlight() }));
  }

  /**
   * In place of SSH: the demo policy's recovery commands are `demo-restart <route>` and
   * `demo-reset-gpu <route>`; running one mends that simulator after a short pause, as a
   * restart takes a while on a real machine.
   */
  exec = async (_host: HostConfig, command: string, _opts: RemoteOptions): Promise<RemoteResult> => {
    const started = Date.now();
    const [verb, route] = command.split(/\s+/);
    const known = (verb === 'demo-restart' || verb === 'demo-reset-gpu') && route !== undefined && Object.hasOwn(this.sims, route);
    if (known) {
      await new Promise((r) => setTimeout(r, 1000));
      await this.mend(route!);
    }
    return {
      exitCode: known ? 0 : 127,
      signal: null,
      stdout: known ? `${verb}: ${route} is serving again\n` : '',
      stderr: known ? '' : `${verb}: not a demo recovery command\n`,
      truncated: false,
      timedOut: false,
      durationMs: Date.now() - started,
    };
  };
}

export function demoRouter(lab: DemoLab, adminToken: string | undefined): Router {
  const router = express.Router();
  router.use(requireAdminToken(adminToken));
  // One JSON line each, so answers read well one after another in a terminal.
  const send = (res: express.Response, body: unknown) => void res.type('application/json').send(`${JSON.stringify(body)}\n`);
  const answer = (route: string, what: string) => ({ route, done: what });
  router.get('/', (_req, res) => send(res, { sims: lab.view() }));
  router.post('/break/:route', async (req, res) => {
    await lab.break(req.params.route!);
    send(res, answer(req.params.route!, 'down: connections are refused'));
  });
  router.post('/cuda/:route', (req, res) => {
    lab.cuda(req.params.route!);
    send(res, answer(req.params.route!, 'CUDA poisoned: requests and probes answer 500 "CUDA error"'));
  });
  router.post('/bad-json/:route', (req, res) => {
    lab.badJson(req.params.route!);
    send(res, answer(req.params.route!, 'the next answer ignores the JSON schema'));
  });
  router.post('/mend/:route', async (req, res) => {
    await lab.mend(req.params.route!);
    send(res, answer(req.params.route!, 'serving normally'));
  });
  return router;
}
