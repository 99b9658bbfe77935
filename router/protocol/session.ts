// Claude Code's session id, for the decision log only (never for routing): the
// `x-claude-code-session-id` header (Claude Code 2.1.86+), else `metadata.user_id` — a JSON
// string with `session_id` (2.1.78+) or the older `user_<hash>_account_<id>_session_<uuid>`.
// Only the session part is kept (the rest names a device and an account), and only when it is
// a short id in a safe alphabet, since it is written to the log.

const SAFE_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const LEGACY = /_session_([A-Za-z0-9._:-]{1,128})$/;

function safe(id: unknown): string | undefined {
  return typeof id === 'string' && SAFE_ID.test(id) ? id : undefined;
}

export function claudeCodeSession(headerValue: string | undefined, userId: string | undefined): string | undefined {
  const fromHeader = safe(headerValue);
  if (fromHeader !== undefined || userId === undefined) return fromHeader;
  if (userId.startsWith('{')) {
    try {
      return safe((JSON.parse(userId) as { session_id?: unknown } | null)?.session_id);
    } catch {
      return undefined;
    }
  }
  return LEGACY.exec(userId)?.[1];
}
