// Whether the real-client tests run, skip or fail. Locally a missing `npm ci --prefix
// test/clients` skips them with the reason; under CI (`CI` set and not "false"/"0"), where
// .ci/run installs the package, a missing install is a failure, never a silent skip. A machine
// that cannot make a network namespace skips in both: that is the machine, not the project.

export type AgentGate = { run: true } | { run: false; skip: string } | { run: false; fail: string };

export function isCi(value: string | undefined): boolean {
  if (value === undefined) return false;
  const v = value.trim().toLowerCase();
  return v !== '' && v !== 'false' && v !== '0';
}

export function agentGate(cli: string, installed: boolean, ci: string | undefined, namespaceProblem: () => string | null): AgentGate {
  if (!installed) {
    const why = `${cli} is not installed: run npm ci --prefix test/clients`;
    return isCi(ci) ? { run: false, fail: `${why} (CI is set, and .ci/run installs it before npm test)` } : { run: false, skip: why };
  }
  const ns = namespaceProblem();
  return ns === null ? { run: true } : { run: false, skip: ns };
}
