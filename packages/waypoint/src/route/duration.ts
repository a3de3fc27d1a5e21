// Go durations as Istio's CRDs accept them (CEL `duration()` is Go's time.ParseDuration):
// "1.5s", "100ms", "1m30s", "250us", "0". Core's parseDuration stops at ms..h; VirtualService
// fields are validated with the full Go grammar, so the waypoint must read all of it.

const UNIT_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  μs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

const PART = /(\d*\.?\d*)(ns|us|µs|μs|ms|s|m|h)/y;

/** Milliseconds, or undefined when `text` is not a non-negative Go duration. */
export function parseGoDuration(text: string): number | undefined {
  if (text === "0") return 0;
  if (text.length === 0) return undefined;
  let total = 0;
  let index = 0;
  while (index < text.length) {
    PART.lastIndex = index;
    const m = PART.exec(text);
    if (!m) return undefined;
    const number = m[1]!;
    if (number === "" || number === ".") return undefined;
    total += Number(number) * UNIT_MS[m[2]!]!;
    index = PART.lastIndex;
  }
  return Number.isFinite(total) ? total : undefined;
}
