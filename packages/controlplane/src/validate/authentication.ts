// Istio's semantic rules for PeerAuthentication (mTLS modes, port-level overrides) and
// RequestAuthentication (JWT rules): what istio/pkg/config/validation enforces beyond the CRD
// schema.

import {
  at,
  forEachRecord,
  isRecord,
  type Json,
  type Problems,
  present,
  quote,
  record,
  stringsAt,
} from "@ambient/kube";
import { checkSelectorAndTargets } from "./authorization-policy.js";

const MTLS_MODES = ["UNSET", "DISABLE", "PERMISSIVE", "STRICT"] as const;

function checkMode(value: unknown, path: string, problems: Problems): void {
  if (value === undefined) return;
  if (typeof value !== "string" || !(MTLS_MODES as readonly string[]).includes(value)) {
    problems.add(path, `must be one of ${MTLS_MODES.join(", ")}`);
  }
}

export function checkPeerAuthentication(obj: Json, problems: Problems): void {
  const spec = record(obj.spec);
  checkSelectorAndTargets(spec, problems);
  checkMode(record(spec.mtls).mode, "spec.mtls.mode", problems);

  if (spec.portLevelMtls === undefined || spec.portLevelMtls === null) return;
  if (!isRecord(spec.portLevelMtls)) return; // the schema reports the wrong type
  const ports = spec.portLevelMtls;
  const labels = record(record(spec.selector).matchLabels);
  if (Object.keys(labels).length === 0) {
    // Ports only mean something for a known set of workloads; Istio refuses them mesh/namespace-wide.
    problems.add(
      "spec.portLevelMtls",
      "requires a selector with matchLabels: mesh- and namespace-wide policies cannot set port-level mTLS",
    );
  }
  if (Object.keys(ports).length === 0) {
    problems.add("spec.portLevelMtls", "must have at least one port when present");
  }
  for (const [port, setting] of Object.entries(ports)) {
    const path = at("spec.portLevelMtls", port);
    const n = /^[0-9]{1,5}$/.test(port) ? Number(port) : Number.NaN;
    if (!(n >= 1 && n <= 65535)) problems.add(path, `port ${quote(port)} must be a number from 1 to 65535`);
    if (!isRecord(setting)) {
      if (setting === null) problems.add(path, "must set mode");
      continue;
    }
    checkMode(setting.mode, at(path, "mode"), problems);
  }
}

export function checkRequestAuthentication(obj: Json, problems: Problems): void {
  const spec = record(obj.spec);
  checkSelectorAndTargets(spec, problems);
  forEachRecord(spec.jwtRules, "spec.jwtRules", (rule, path) => {
    if (!present(rule.issuer))
      problems.add(at(path, "issuer"), "is required (the iss claim tokens must carry)");
    if (present(rule.jwks) && present(rule.jwksUri)) {
      problems.add(at(path, "jwks"), "cannot be combined with jwksUri; set only one");
    }
    if (typeof rule.jwksUri === "string" && rule.jwksUri !== "") {
      const problem = jwksUriProblem(rule.jwksUri);
      if (problem) problems.add(at(path, "jwksUri"), problem);
    }
    if (typeof rule.jwks === "string" && rule.jwks !== "") {
      const problem = jwksProblem(rule.jwks);
      if (problem) problems.add(at(path, "jwks"), problem);
    }
    for (const item of stringsAt(rule.audiences, at(path, "audiences"))) {
      if (item.value === "") problems.add(item.path, "must not be empty");
    }
    for (const item of stringsAt(rule.fromParams, at(path, "fromParams"))) {
      if (item.value === "") problems.add(item.path, "must not be empty");
    }
    for (const item of stringsAt(rule.fromCookies, at(path, "fromCookies"))) {
      if (item.value === "") problems.add(item.path, "must not be empty");
    }
    forEachRecord(rule.fromHeaders, at(path, "fromHeaders"), (header, headerPath) => {
      if (!present(header.name)) problems.add(at(headerPath, "name"), "is required");
    });
  });
}

function jwksUriProblem(uri: string): string | undefined {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return `${quote(uri)} is not a URL`;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    return `scheme ${quote(url.protocol.replace(/:$/, ""))} is not supported; use http or https`;
  }
  return undefined;
}

/** An inline JWKS must be a JWK Set (RFC 7517 §5) or a single JWK, as Istio's parser accepts. */
function jwksProblem(jwks: string): string | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(jwks);
  } catch (err) {
    return `is not valid JSON: ${(err as Error).message}`;
  }
  if (!isRecord(parsed) || (!Array.isArray(parsed.keys) && typeof parsed.kty !== "string")) {
    return 'must be a JSON Web Key Set (an object with a "keys" list) or a single JSON Web Key';
  }
  return undefined;
}
