// Cost-equivalent of one request: what its tokens would have cost on the reference cloud model
// that pricing.reference maps its route (or served model) to. Priced once, when the row is
// written, because catalogue prices can be tiered by the request's own size. Overrides win
// over the catalogue; an unmapped route, an unknown model or a request without token counts is
// unpriced (null), never $0.
//
// The catalogue is @pydantic/genai-prices: its price data is bundled in the package and read
// from there; its updatePrices() (which would fetch from GitHub) is never called.
import { createRequire } from 'node:module';
import type { Provider } from '@pydantic/genai-prices';
import type { PricingConfig } from '../policy/types.ts';

export interface Price {
  usd: number | null;
  /** The reference model ("provider/model"), whether or not a price was found. */
  ref: string | null;
}

export interface Priceable {
  route: string | null;
  served_model: string | null;
  prompt_tokens: number | null;
  completion_tokens: number | null;
}

export function referenceFor(r: Pick<Priceable, 'route' | 'served_model'>, cfg: PricingConfig): string | null {
  return (r.route !== null ? cfg.reference[r.route] : undefined) ?? (r.served_model !== null ? cfg.reference[r.served_model] : undefined) ?? null;
}

export function priceOf(r: Priceable, cfg: PricingConfig): Price {
  const ref = referenceFor(r, cfg);
  if (ref === null || r.prompt_tokens === null) return { usd: null, ref };
  const input = r.prompt_tokens;
  const output = r.completion_tokens ?? 0;
  const own = cfg.overrides[ref];
  if (own) return { usd: (input * own.input_per_mtok + output * own.output_per_mtok) / 1e6, ref };
  const key = `${ref}\u0000${input}\u0000${output}`;
  let usd = priced.get(key);
  if (usd === undefined) {
    usd = catalogue(ref, input, output);
    if (priced.size >= PRICED_MAX) priced.clear();
    priced.set(key, usd);
  }
  return { usd, ref };
}

// A catalogue lookup matches the model against its provider's list (~10-40 µs); the same
// reference and token counts (a camera pipeline's fixed prompt, a health check) are priced once.
const PRICED_MAX = 10_000;
const priced = new Map<string, number | null>();
const providers = new Map<string, Provider | null>();

// Loaded on the first lookup: its bundled price data takes ~20 MB, needless while every
// reference is overridden or none is set.
let genaiPrices: typeof import('@pydantic/genai-prices') | undefined;

function catalogue(ref: string, input: number, output: number): number | null {
  genaiPrices ??= createRequire(import.meta.url)('@pydantic/genai-prices') as typeof import('@pydantic/genai-prices');
  const { calcPrice, findProvider } = genaiPrices;
  const slash = ref.indexOf('/');
  const providerId = ref.slice(0, slash);
  let provider = providers.get(providerId);
  if (provider === undefined) {
    provider = findProvider({ providerId }) ?? null;
    providers.set(providerId, provider);
  }
  if (provider === null) return null;
  try {
    const calc = calcPrice({ input_tokens: input, output_tokens: output }, ref.slice(slash + 1), { provider });
    return calc ? calc.total_price : null;
  } catch {
    return null;
  }
}
