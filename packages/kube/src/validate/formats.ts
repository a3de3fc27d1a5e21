// Value formats shared by several kinds: Kubernetes names, IANA port names, port numbers, Go
// durations and regular expressions. Each check returns a sentence fragment describing what is
// wrong, or undefined when the value is fine, so callers can prefix the field path.

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;

export function dns1123Label(value: string): string | undefined {
  if (value.length > 63) return "must be at most 63 characters (a DNS-1123 label)";
  if (!DNS1123_LABEL.test(value)) {
    return "must be a DNS-1123 label: lowercase letters, digits and '-', starting and ending with a letter or digit";
  }
  return undefined;
}

export function dns1123Subdomain(value: string): string | undefined {
  if (value.length > 253) return "must be at most 253 characters (a DNS-1123 subdomain)";
  if (!DNS1123_SUBDOMAIN.test(value)) {
    return "must be a DNS-1123 subdomain: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit";
  }
  return undefined;
}

/** Service names are DNS-1035 labels: they become DNS names, so they must start with a letter. */
export function dns1035Label(value: string): string | undefined {
  if (value.length > 63) return "must be at most 63 characters (a DNS-1035 label)";
  if (!DNS1035_LABEL.test(value)) {
    return "must be a DNS-1035 label: lowercase letters, digits and '-', starting with a letter and ending with a letter or digit";
  }
  return undefined;
}

/** RFC 6335 service name, what Kubernetes requires of a named port. */
export function ianaServiceName(value: string): string | undefined {
  if (value.length === 0 || value.length > 15) return "must be 1-15 characters (an IANA service name)";
  if (!/^[a-z0-9-]+$/.test(value)) return "must contain only lowercase letters, digits and '-'";
  if (!/[a-z]/.test(value)) return "must contain at least one letter";
  if (value.startsWith("-") || value.endsWith("-")) return "must not start or end with '-'";
  if (value.includes("--")) return "must not contain '--'";
  return undefined;
}

export function isPortNumber(value: unknown): value is number {
  return typeof value === "number" && Number.isInteger(value) && value >= 1 && value <= 65535;
}

/** Istio writes ports as strings ("8080"); Go's ParseUint rejects signs, spaces and decimals. */
export function parsePortString(value: string): number | undefined {
  if (!/^[0-9]{1,5}$/.test(value)) return undefined;
  const n = Number(value);
  return n >= 1 && n <= 65535 ? n : undefined;
}

const DURATION_UNITS_NS: Record<string, number> = {
  ns: 1,
  us: 1e3,
  µs: 1e3,
  μs: 1e3,
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9,
};
const DURATION_PART = /([0-9]*(?:\.[0-9]*)?)(ns|us|µs|μs|ms|s|m|h)/y;

/**
 * Parses a Go duration ("1.5s", "1h30m", "250ms") into nanoseconds. Istio's CRDs validate
 * durations with CEL's duration(), which is Go's time.ParseDuration. Negative values are refused:
 * no Istio duration field means anything below zero.
 */
export function parseGoDuration(value: string): number | undefined {
  if (value === "0") return 0;
  if (value.length === 0) return undefined;
  let total = 0;
  let index = 0;
  while (index < value.length) {
    DURATION_PART.lastIndex = index;
    const m = DURATION_PART.exec(value);
    if (!m) return undefined;
    const number = m[1]!;
    if (number === "" || number === ".") return undefined;
    total += Number(number) * DURATION_UNITS_NS[m[2]!]!;
    index = DURATION_PART.lastIndex;
  }
  return Number.isFinite(total) ? total : undefined;
}

export function goDuration(value: unknown): string | undefined {
  if (typeof value !== "string") return 'must be a duration string such as "1.5s" or "100ms"';
  if (parseGoDuration(value) === undefined) {
    return `${JSON.stringify(value)} is not a duration (use Go syntax such as "1.5s", "100ms", "1m30s")`;
  }
  return undefined;
}

/**
 * Compiles a regular expression to catch obvious mistakes early. JavaScript's RegExp is only an
 * approximation of RE2 (RE2 has no backreferences or lookaround, JS lacks some RE2 classes);
 * the waypoint, which evaluates these as RE2, is the final judge.
 */
export function regex(value: unknown): string | undefined {
  if (typeof value !== "string") return "must be a string holding a regular expression";
  try {
    new RegExp(value, "u");
    return undefined;
  } catch (err) {
    try {
      // Some valid RE2 (e.g. `\Q..\E`-free escapes like `\-`) is only accepted without the u flag.
      new RegExp(value);
      return undefined;
    } catch {
      return `is not a valid regular expression: ${(err as Error).message}`;
    }
  }
}

/** Kubernetes label key: optional DNS subdomain prefix and a name of at most 63 characters. */
export function labelKey(key: string): string | undefined {
  const slash = key.lastIndexOf("/");
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (prefix !== undefined && dns1123Subdomain(prefix) !== undefined) {
    return "has a prefix that is not a DNS-1123 subdomain";
  }
  if (name.length === 0 || name.length > 63 || !/^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/.test(name)) {
    return "must be a label name: at most 63 alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric";
  }
  return undefined;
}

export function labelValue(value: string): string | undefined {
  if (value === "") return undefined;
  if (value.length > 63 || !/^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/.test(value)) {
    return "must be at most 63 alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric";
  }
  return undefined;
}
