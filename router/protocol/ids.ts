// Ids for the objects the translators create: a protocol prefix and 24 random hex digits.
import { randomBytes } from 'node:crypto';

export function newId(prefix: string): string {
  return prefix + randomBytes(12).toString('hex');
}
