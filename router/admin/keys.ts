// /admin/keys (SPEC §12): create, list, change, rotate and revoke API keys at run time. The
// secret is in the answer of create and rotate only; the audit log gets names and ids.
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import { RouterError } from '../errors.ts';
import { parseKeyInput } from '../keys/input.ts';
import type { KeyService } from '../keys/service.ts';

type Audit = (req: Request, action: string, detail: Record<string, unknown>) => void;

export function keysRouter(keys: KeyService, audit: Audit): Router {
  const router = express.Router();
  const json = express.json({ limit: '16kb', type: () => true });
  const idOf = (req: Request) => String(req.params.id);

  router.get('/', async (_req, res) => {
    res.json({ keys: await keys.list() });
  });
  router.post('/', json, async (req, res) => {
    const input = parseKeyInput(req.body);
    const created = keys.create(input);
    audit(req, 'key-create', { id: created.id, name: created.name });
    res.status(201).json({ ...(await created.view), key: created.key });
  });
  router.get('/:id', async (req, res) => {
    res.json(await keys.get(idOf(req)));
  });
  router.patch('/:id', json, async (req, res) => {
    const view = await keys.patch(idOf(req), parseKeyInput(req.body));
    audit(req, 'key-patch', { id: view.id, name: view.name });
    res.json(view);
  });
  router.post('/:id/rotate', (req, res) => {
    const r = keys.rotate(idOf(req));
    audit(req, 'key-rotate', { id: r.id });
    res.json(r);
  });
  router.delete('/:id', async (req, res) => {
    const view = await keys.revoke(idOf(req));
    audit(req, 'key-revoke', { id: view.id, name: view.name });
    res.json(view);
  });
  router.all(['/', '/:id', '/:id/rotate'], (req: Request, _res: Response, next: NextFunction) => {
    next(new RouterError('method_not_allowed', `${req.method} is not allowed on /admin/keys${req.path === '/' ? '' : req.path}; see README "Keys".`));
  });
  return router;
}
