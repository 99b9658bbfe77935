// The planning half of `homelab-router init`: upstream facts in, a policy document and the
// comments that explain it out. Pure: no I/O, no clock. The classifier and the buckets (keywords,
// examples, signals, tie_break) come from a template policy, the shipped one; only their routes
// are planned here.
//
// Roles, from what each machine can do:
//   strongest  most parameters (from the runtime or the model name), then context, vision, slots.
//              reasoning, unknown and every bucket not named below; the end of every fallback chain.
//   eyes       a route that sees, preferring one that is not the strongest, then the most slots:
//              vision and camera, and notification's images.
//   coder      a route whose model name says code (coder, codestral, devstral, ...): coding, agentic.
//              Else, with three routes or more, one with no role yet whose context is as long as
//              the strongest's (long files and agent transcripts); else the strongest.
//   quick      with more than one route: another route, one with no role yet if there is one, with
//              the most slots (then context): chat, utility, summaries, notifications, fast JSON.
import type { BucketConfig, Policy, RouteConfig } from '../policy/types.ts';
import { guessed, type Fact, type UpstreamFacts } from './facts.ts';

export interface Template {
  classifier: Policy['classifier'];
  buckets: Record<string, BucketConfig>;
}

export interface PolicyPlan {
  /** The policy document as it will be written (keys in file order). */
  doc: Record<string, any>;
  /** Comment lines above each route, by route name. */
  routeNotes: Record<string, string[]>;
  /** Trailing comments on route keys that were guessed: route → key → text. */
  guesses: Record<string, Record<string, string>>;
  /** One line above each bucket: why it goes where it goes. */
  bucketNotes: Record<string, string>;
  /** Problems that stop the plan (two routes serving one model name). */
  errors: string[];
}

const DEFAULT_CONTEXT = 8192;
const CODE_MODEL = /(coder|codestral|devstral|starcoder|codellama|codegemma|codeqwen|deepseek-code|granite-code|qwq-code|-code\b)/i;
const VISION_MODEL = /(-vl\b|-vl-|vl-|vision|llava|pixtral|minicpm-v|internvl|idefics|moondream|gemma-3|gemma3|qwen2\.5-omni|llama-4|mistral-small-3\.[12])/i;

/** Billions of parameters named in a model id: "qwen2.5-coder-32b" → 32; "a3b" (active experts) is not read. */
export function paramsFromName(model: string): number | undefined {
  const m = /(?:^|[^a-z0-9.])(\d+(?:\.\d+)?)b(?![a-z0-9])/i.exec(model);
  return m ? Number(m[1]) : undefined;
}

interface Sized {
  facts: UpstreamFacts;
  context: Fact<number>;
  vision: Fact<boolean>;
  slots: Fact<number>;
  params: number;
}

function sizeUp(f: UpstreamFacts): Sized {
  return {
    facts: f,
    context: f.context ?? guessed(DEFAULT_CONTEXT, `${f.runtimeLabel} does not report its context length; ${DEFAULT_CONTEXT} assumed: set it to what the server was started with`),
    vision:
      f.vision ??
      (VISION_MODEL.test(f.model)
        ? guessed(true, `${f.runtimeLabel} does not say whether the model sees images; its name suggests it does`)
        : guessed(false, `${f.runtimeLabel} does not say whether the model sees images; set true if it does`)),
    slots: f.slots ?? guessed(1, `${f.runtimeLabel} does not report how many requests it runs at once; 1 assumed`),
    params: f.paramsB ?? paramsFromName(f.model) ?? 0,
  };
}

/** Strongest first: parameters, context, vision, slots; the order given breaks ties. */
function byCapability(a: Sized, b: Sized): number {
  return b.params - a.params || b.context.value - a.context.value || Number(b.vision.value) - Number(a.vision.value) || b.slots.value - a.slots.value;
}

type Role = 'strongest' | 'quick' | 'coder' | 'eyes';

/** The bucket names of the shipped policy and the role that serves each; others go to the strongest. */
const BUCKET_ROLE: Record<string, Role> = {
  camera: 'eyes',
  vision: 'eyes',
  notification: 'quick',
  fast: 'quick',
  general_chat: 'quick',
  utility: 'quick',
  medium_summary: 'quick',
  coding: 'coder',
  agentic: 'coder',
  reasoning: 'strongest',
  unknown: 'strongest',
};

export function planPolicy(upstreams: UpstreamFacts[], template: Template): PolicyPlan {
  const errors: string[] = [];
  const seenModel = new Map<string, string>();
  for (const u of upstreams) {
    const prev = seenModel.get(u.model);
    if (prev !== undefined) errors.push(`${prev} and ${u.name} both serve "${u.model}": a policy names each served model once (give one of them another model, or leave one out)`);
    seenModel.set(u.model, u.name);
  }
  const sized = upstreams.map(sizeUp);
  const ranked = [...sized].sort(byCapability);
  const strongest = ranked[0]!;
  const others = ranked.slice(1);
  const seeing = ranked.filter((s) => s.vision.value);
  const eyes = [...seeing].sort((a, b) => Number(a === strongest) - Number(b === strongest) || b.slots.value - a.slots.value)[0];
  // Each machine gets work where it can: a role goes to a route that has none yet when one fits.
  const spare = (s: Sized, ...taken: Array<Sized | undefined>) => s !== strongest && !taken.includes(s);
  const coder =
    ranked.find((s) => CODE_MODEL.test(s.facts.model)) ??
    (sized.length >= 3 ? others.filter((s) => spare(s, eyes) && s.context.value >= strongest.context.value).sort((a, b) => b.context.value - a.context.value || b.slots.value - a.slots.value)[0] : undefined) ??
    strongest;
  const bySlots = (a: Sized, b: Sized) => b.slots.value - a.slots.value || b.context.value - a.context.value;
  const quick = others.filter((s) => spare(s, eyes, coder)).sort(bySlots)[0] ?? [...others].sort(bySlots)[0] ?? strongest;
  const roleRoute: Record<Role, Sized | undefined> = { strongest, quick, coder, eyes };
  const name = (s: Sized) => s.facts.name;

  // Routes, in the order given on the command line.
  const routes: Record<string, Partial<RouteConfig>> = {};
  const routeNotes: Record<string, string[]> = {};
  const guesses: Record<string, Record<string, string>> = {};
  const strongestSees = strongest.vision.value;
  const rolesOf = (s: Sized) => (Object.keys(roleRoute) as Role[]).filter((r) => roleRoute[r] === s);
  // Role aliases first; a route's own alias (homelab/<name>) only where no role alias or served model has it.
  const taken = new Set([...sized.flatMap((s) => rolesOf(s).map((r) => ROLE_ALIAS[r])), ...sized.map((s) => s.facts.model)]);
  for (const s of sized) {
    const f = s.facts;
    const roles = rolesOf(s);
    const own = `homelab/${f.name}`;
    const aliases = [...(taken.has(own) ? [] : [own]), ...roles.map((r) => ROLE_ALIAS[r])].filter((a, i, all) => all.indexOf(a) === i);
    const fallback: RouteConfig['fallback'] =
      s === strongest ? 'terminal' : { busy: name(strongest), ...(s.vision.value && strongestSees ? { busy_image: name(strongest) } : {}), outage: name(strongest) };
    routes[f.name] = {
      url: f.url,
      model: f.model,
      runtime: f.runtime,
      vision: s.vision.value,
      context_tokens: s.context.value,
      slots: s.slots.value,
      queue: s.slots.value,
      queue_timeout_ms: 2000,
      timeout_ms: 60000,
      ...(f.apiKeyEnv ? { api_key_env: f.apiKeyEnv } : {}),
      aliases,
      fallback,
      recovery: { managed: false },
    };
    routeNotes[f.name] = [
      `${f.name}: ${f.runtimeLabel}, ${f.model}${roles.length > 0 ? ` (${roles.map((r) => ROLE_TEXT[r]).join('; ')})` : ' (takes spill only)'}`,
      ...(f.otherModels.length > 0 ? [`also listed there: ${f.otherModels.slice(0, 6).join(', ')}${f.otherModels.length > 6 ? ', ...' : ''} (one route per served model)`] : []),
      ...(s === strongest ? ['the most capable route: every fallback chain ends here, so it never spills (503 with Retry-After when full)'] : []),
    ];
    const g: Record<string, string> = {};
    if (s.context.guessed) g.context_tokens = `guessed: ${s.context.source}`;
    if (s.vision.guessed) g.vision = `guessed: ${s.vision.source}`;
    if (s.slots.guessed) g.slots = `guessed: ${s.slots.source}`;
    guesses[f.name] = g;
  }

  // Buckets: the template's, each given the route of its role.
  const buckets: Record<string, BucketConfig> = {};
  const bucketNotes: Record<string, string> = {};
  for (const [bucket, cfg] of Object.entries(template.buckets)) {
    const role = BUCKET_ROLE[bucket] ?? 'strongest';
    const target = roleRoute[role] ?? (role === 'eyes' ? undefined : strongest);
    if (bucket === template.classifier.image_bucket && target === undefined) {
      bucketNotes[bucket] = '';
      continue; // nothing sees: no image bucket (an image then gets 400: no route sees images)
    }
    const route = target ?? quick;
    // Everything that says what the bucket's job is comes from the template as it is; only where
    // it goes is planned.
    const out = {
      ...(cfg.description ? { description: cfg.description } : {}),
      ...(cfg.keywords ? { keywords: cfg.keywords } : {}),
      ...(cfg.examples ? { examples: cfg.examples } : {}),
      ...(cfg.signals ? { signals: cfg.signals } : {}),
      ...(cfg.on_code ? { on_code: cfg.on_code } : {}),
      route: name(route),
    } as BucketConfig;
    if (route !== strongest && strongest.context.value > route.context.value) out.large = name(strongest);
    if (eyes && (role === 'quick' || role === 'eyes') && bucket !== template.classifier.image_bucket) out.image_route = name(eyes);
    if (cfg.fail_closed) {
      out.fail_closed = true;
      const escalate = seeing.find((s) => s !== route) ?? strongest;
      out.escalate_to = name(escalate);
    }
    buckets[bucket] = out;
    bucketNotes[bucket] = `${bucket} → ${name(route)} (${role === 'strongest' || route === strongest ? 'the most capable route' : ROLE_TEXT[role]})${out.large ? `; prompts past size_tiers.large → ${out.large}` : ''}`;
  }
  for (const [bucket, note] of Object.entries(bucketNotes)) if (note === '') delete bucketNotes[bucket];
  for (const cfg of Object.values(buckets)) if (cfg.on_code !== undefined && !(cfg.on_code in buckets)) delete cfg.on_code;

  const kept = Object.keys(buckets);
  const classifier = {
    ...template.classifier,
    tie_break: template.classifier.tie_break.filter((b) => kept.includes(b)),
    default_bucket: kept.includes(template.classifier.default_bucket) ? template.classifier.default_bucket : kept[0]!,
  };
  const doc = {
    version: 1,
    server: { listen: '127.0.0.1:4000', max_body_bytes: 33554432, request_timeout_ms: 120000, stream_idle_timeout_ms: 60000 },
    logging: { prompts: false },
    classifier,
    size_tiers: { medium: 8192, large: 24576 },
    health: { interval_s: 15, timeout_ms: 3000, unhealthy_after: 2, healthy_after: 1 },
    routes,
    buckets,
  };
  return { doc, routeNotes, guesses, bucketNotes, errors };
}

const ROLE_ALIAS: Record<Role, string> = { strongest: 'homelab/reasoning', quick: 'homelab/chat', coder: 'homelab/code', eyes: 'homelab/vision' };
const ROLE_TEXT: Record<Role, string> = {
  strongest: 'reasoning, unknown',
  quick: 'chat, utility, summaries, notifications, fast JSON',
  coder: 'coding, agentic',
  eyes: 'images, camera events',
};
