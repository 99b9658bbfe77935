// Seeded randomness for the soaks: mulberry32, a small fast generator whose sequence a seed
// fixes. Draws interleave with timing, so a seed gives the same mix and fault choices but not
// the same run; the soaks print it so a run can be repeated as closely as possible.
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
