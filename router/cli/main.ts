// `homelab-router <command>`: serve · demo · init · check · explain · watchdog --once ·
// drain / undrain / upstreams. Each command lives in its own module, loaded on demand.
import { parseArgs } from 'node:util';

const USAGE = `usage: homelab-router <command> [options]

  serve [--policy P] [--listen HOST:PORT]   run the router (policy: $HOMELAB_ROUTER_POLICY or ./routing_policy.yaml)
  demo [--port N]                           router on 127.0.0.1:4000 plus four simulated GPU upstreams
  init --upstream NAME=URL [...] [--api-key-env NAME=VARIABLE] [--out FILE] [--force]
                                            probe your OpenAI-compatible servers and write a policy for them
  check <policy>                            validate a policy: exit 0 valid, 1 invalid (errors on stderr)
  explain [--policy P] [--image] [--json] "prompt"
                                            print the routing decision for a prompt (--json: as JSON;
                                            --max-tokens N: as if the client asked for N output tokens)
  explain [--policy P] [--json] --body request.json
                                            ... for a whole chat completion body (what a client sends)
  watchdog --once [--policy P]              one watchdog round (what the systemd timer runs)
  drain <route> | undrain <route>           drain or undrain a route on a running router
  upstreams                                 show every route's state on a running router
  keys create NAME [--models M1,M2] [--endpoints E1,E2] [--rpm N] [--max-in-flight N]
       [--monthly-tokens N] [--expires ISO] [--admin]     create an API key (shown once)
  keys list | keys rotate NAME | keys revoke NAME     manage the keys of a running router
  requests [--since 1h] [--route R] [--status 5xx] [--client C] [--json]   recent requests from the request log
  usage [--range 7d] [--by client] [--json]  requests, errors, latency, tokens and cost-equivalent per route, client, ...

  Running-router commands use --url (default $HOMELAB_ROUTER_URL or http://127.0.0.1:4000)
  and $HOMELAB_ROUTER_ADMIN_TOKEN.`;

export function defaultPolicyPath(flag?: string): string {
  return flag ?? process.env.HOMELAB_ROUTER_POLICY ?? 'routing_policy.yaml';
}

const OPTIONS = {
  policy: { type: 'string' },
  listen: { type: 'string' },
  port: { type: 'string' },
  image: { type: 'boolean' },
  once: { type: 'boolean' },
  url: { type: 'string' },
  json: { type: 'boolean' },
  'max-tokens': { type: 'string' },
  body: { type: 'string' },
  models: { type: 'string' },
  endpoints: { type: 'string' },
  rpm: { type: 'string' },
  'max-in-flight': { type: 'string' },
  'monthly-tokens': { type: 'string' },
  expires: { type: 'string' },
  admin: { type: 'boolean' },
  upstream: { type: 'string', multiple: true },
  'api-key-env': { type: 'string', multiple: true },
  out: { type: 'string' },
  force: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** The flags, or null after saying on stderr what is wrong with them (exit 2). */
function parseFlags(rest: string[]): ReturnType<typeof parseArgs<{ args: string[]; allowPositionals: true; options: typeof OPTIONS }>> | null {
  try {
    return parseArgs({ args: rest, allowPositionals: true, options: OPTIONS });
  } catch (err) {
    console.error(`${(err as Error).message}\n\n${USAGE}`);
    return null;
  }
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  // These parse their own flags.
  if (command === 'requests') return (await import('./requests.ts')).requestsCommand(rest);
  if (command === 'usage') return (await import('./requests.ts')).usageCommand(rest);
  const parsed = parseFlags(rest);
  if (!parsed) return 2;
  const { values, positionals } = parsed;
  if (!command || values.help || command === 'help' || command === '--help') {
    console.log(USAGE);
    return command ? 0 : 2;
  }
  switch (command) {
    case 'serve':
      return (await import('./serve.ts')).serve({ policyPath: defaultPolicyPath(values.policy), listen: values.listen });
    case 'demo': {
      const port = values.port === undefined ? 4000 : /^\d{1,5}$/.test(values.port) && Number(values.port) <= 65535 ? Number(values.port) : null;
      if (port === null) {
        console.error(`--port "${values.port}" is not a port number (0 to 65535; 0 picks a free one)\n\n${USAGE}`);
        return 2;
      }
      return (await import('./demo.ts')).demo({ port });
    }
    case 'init':
      return (await import('./init.ts')).init({ upstream: values.upstream ?? [], apiKeyEnv: values['api-key-env'] ?? [], out: values.out, force: values.force ?? false });
    case 'check':
      return (await import('./inspect.ts')).check(positionals[0] ?? defaultPolicyPath(values.policy));
    case 'explain':
      return (await import('./inspect.ts')).explain(defaultPolicyPath(values.policy), positionals.join(' '), { image: values.image ?? false, json: values.json ?? false, maxTokens: values['max-tokens'], bodyFile: values.body });
    case 'watchdog': {
      if (!values.once) {
        console.error('watchdog runs one round with --once (the systemd timer calls it every minute); `serve` runs the same logic in-process.');
        return 2;
      }
      const { logDir } = await import('../obs/logs.ts');
      const { runWatchdogOnce } = await import('../recovery/watchdog-cli.ts');
      return runWatchdogOnce({ policyPath: defaultPolicyPath(values.policy), logDir: logDir(), out: (line) => console.log(line) });
    }
    case 'drain':
    case 'undrain':
    case 'upstreams':
      return (await import('./admin-client.ts')).adminCommand(command, positionals[0], { url: values.url, json: values.json ?? false });
    case 'keys':
      return (await import('./keys.ts')).keysCommand(positionals, { ...values, url: values.url, json: values.json ?? false });
    default:
      console.error(`unknown command "${command}"\n\n${USAGE}`);
      return 2;
  }
}

// `homelab-router explain ... | head` closes the pipe early; that is not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

main(process.argv.slice(2)).then(
  (code) => {
    if (code !== -1) process.exitCode = code;
  },
  (err: unknown) => {
    console.error(err instanceof Error ? err.message : String(err));
    process.exitCode = 1;
  },
);
