// Workload identity as Istio names it: spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>.
// Parsing is strict (SPIFFE spec character sets, Istio's four-segment path) because this string
// is what authorization policies match on: two spellings of one identity must never both parse.

import { AmbientError, ErrorCode } from "../errors/errors.js";

const SCHEME = "spiffe://";
// SPIFFE spec §2.1 and §2.2: the trust domain is lowercase-only so that it has one spelling;
// path segments allow both cases. Percent-encoding is not allowed at all.
const TRUST_DOMAIN_CHAR = /^[a-z0-9._-]$/;
const PATH_CHAR = /^[a-zA-Z0-9._-]$/;
// SPIFFE spec §2.3: the whole URI is at most 2048 bytes and the trust domain at most 255 chars.
const MAX_ID_LENGTH = 2048;
const MAX_TRUST_DOMAIN_LENGTH = 255;

export interface SpiffeIdParts {
  trustDomain: string;
  namespace: string;
  serviceAccount: string;
}

/** An immutable, validated Istio workload identity. Compare with `equals`, never `===`. */
export class SpiffeId implements SpiffeIdParts {
  readonly trustDomain: string;
  readonly namespace: string;
  readonly serviceAccount: string;
  readonly #uri: string;

  private constructor(parts: SpiffeIdParts) {
    this.trustDomain = parts.trustDomain;
    this.namespace = parts.namespace;
    this.serviceAccount = parts.serviceAccount;
    this.#uri = `${SCHEME}${parts.trustDomain}/ns/${parts.namespace}/sa/${parts.serviceAccount}`;
    Object.freeze(this);
  }

  /** Parses `spiffe://<td>/ns/<ns>/sa/<sa>`; throws IDENTITY_MALFORMED naming the wrong part. */
  static parse(uri: string): SpiffeId {
    const problem = findProblem(uri);
    if (typeof problem === "string") {
      throw new AmbientError(ErrorCode.IDENTITY_MALFORMED, `SPIFFE ID ${quote(uri)} ${problem}`, {
        details: { identity: typeof uri === "string" ? uri.slice(0, 256) : String(uri) },
      });
    }
    return new SpiffeId(problem);
  }

  /** Like `parse`, but returns undefined instead of throwing (for optional or untrusted input). */
  static tryParse(uri: string): SpiffeId | undefined {
    const result = findProblem(uri);
    return typeof result === "string" ? undefined : new SpiffeId(result);
  }

  /** Builds an identity from its parts, validating each as `parse` would. */
  static of(parts: SpiffeIdParts): SpiffeId {
    return SpiffeId.parse(SpiffeId.format(parts));
  }

  /**
   * The URI of parts that were validated already (xDS resources, translated objects), without
   * building an object: on a hot path or in an index, where a throw would be the wrong answer.
   */
  static format(parts: SpiffeIdParts): string {
    return `${SCHEME}${parts.trustDomain}/ns/${parts.namespace}/sa/${parts.serviceAccount}`;
  }

  equals(other: SpiffeId | undefined | null): boolean {
    return other != null && other.toString() === this.#uri;
  }

  toString(): string {
    return this.#uri;
  }

  toJSON(): string {
    return this.#uri;
  }
}

/** Returns `td` when it is a valid SPIFFE trust domain; throws IDENTITY_MALFORMED naming the problem. */
export function parseTrustDomain(td: string): string {
  const problem = typeof td === "string" ? trustDomainProblem(td) : `is a ${typeof td}, not a string`;
  if (problem) {
    throw new AmbientError(ErrorCode.IDENTITY_MALFORMED, `trust domain ${quote(td)} ${problem}`);
  }
  return td;
}

/** The reason `uri` is not an Istio SPIFFE ID (a sentence fragment), or its parts when it is. */
function findProblem(uri: unknown): string | SpiffeIdParts {
  if (typeof uri !== "string") return `is a ${typeof uri}, not a string`;
  if (uri.length === 0) return "is empty";
  if (Buffer.byteLength(uri, "utf8") > MAX_ID_LENGTH) {
    return `is ${Buffer.byteLength(uri, "utf8")} bytes long; the limit is ${MAX_ID_LENGTH}`;
  }
  if (!uri.startsWith(SCHEME)) {
    const colon = uri.indexOf(":");
    const scheme = colon > 0 ? uri.slice(0, colon) : "";
    if (scheme.toLowerCase() === "spiffe" && uri.startsWith(`${scheme}://`)) {
      return `has scheme "${scheme}"; it must be lowercase "spiffe"`;
    }
    return scheme ? `has scheme "${scheme}"; expected "spiffe://"` : `does not start with "spiffe://"`;
  }
  const rest = uri.slice(SCHEME.length);
  // Query and fragment get their own message: they are the likeliest way a URI library produced it.
  const query = rest.indexOf("?");
  if (query >= 0) return `has a query ("${rest.slice(query)}"); SPIFFE IDs have none`;
  const fragment = rest.indexOf("#");
  if (fragment >= 0) return `has a fragment ("${rest.slice(fragment)}"); SPIFFE IDs have none`;

  const slash = rest.indexOf("/");
  const trustDomain = slash < 0 ? rest : rest.slice(0, slash);
  if (trustDomain.length === 0) return "has an empty trust domain";
  const tdProblem = trustDomainProblem(trustDomain);
  if (tdProblem) return `has trust domain ${quote(trustDomain)} which ${tdProblem}`;
  if (slash < 0) return `has no path; expected "/ns/<namespace>/sa/<service-account>"`;

  const segments = rest.slice(slash + 1).split("/");
  for (const [i, segment] of segments.entries()) {
    const p = segmentProblem(segment, i);
    if (p) return p;
  }
  if (segments.length !== 4) {
    return `has ${segments.length} path segments; expected 4 ("/ns/<namespace>/sa/<service-account>")`;
  }
  const [ns, namespace, sa, serviceAccount] = segments as [string, string, string, string];
  if (ns !== "ns") return `has path segment 1 "${ns}"; expected "ns"`;
  if (sa !== "sa") return `has path segment 3 "${sa}"; expected "sa"`;
  return { trustDomain, namespace, serviceAccount };
}

/** What is wrong with a trust domain, as a predicate ("is empty", "contains ..."), or undefined. */
function trustDomainProblem(td: string): string | undefined {
  if (td.length === 0) return "is empty";
  if (td.length > MAX_TRUST_DOMAIN_LENGTH) {
    return `is ${td.length} characters long; the limit is ${MAX_TRUST_DOMAIN_LENGTH}`;
  }
  for (let i = 0; i < td.length; i++) {
    const c = td[i]!;
    if (TRUST_DOMAIN_CHAR.test(c)) continue;
    if (c >= "A" && c <= "Z") return `contains uppercase "${c}"; trust domains must be lowercase`;
    return `contains invalid character ${quote(c)} at offset ${i}; allowed: a-z 0-9 . - _`;
  }
  return undefined;
}

function segmentProblem(segment: string, index: number): string | undefined {
  if (segment.length === 0) return `has an empty path segment at position ${index + 1}`;
  if (segment === "." || segment === "..") {
    return `has a "${segment}" path segment at position ${index + 1}; relative segments are not allowed`;
  }
  for (let i = 0; i < segment.length; i++) {
    const c = segment[i]!;
    if (!PATH_CHAR.test(c)) {
      return `has path segment ${index + 1} "${segment}" with invalid character ${quote(c)}; allowed: a-z A-Z 0-9 . - _`;
    }
  }
  return undefined;
}

/** JSON-quotes untrusted text for a message, bounded so a hostile input cannot flood a log line. */
function quote(text: unknown): string {
  const s = String(text);
  return JSON.stringify(s.length > 200 ? `${s.slice(0, 200)}...` : s);
}
