// The waypoint's L7 configuration as xDS resources of Ambient's own type (ambient.waypoint.v1.
// L7Resource): each Istio object a waypoint applies (VirtualService, DestinationRule,
// RequestAuthentication, AuthorizationPolicy with targetRefs) and each waypoint Gateway, carried as
// written, its spec as JSON. Encoding is canonical (object keys and map entries sorted, empty
// fields left out) so an unchanged object keeps its content-hash version and is never re-sent.

import type protobuf from "protobufjs";
import { AmbientError, ErrorCode, errorMessage } from "../errors/errors.js";
import { protos } from "./proto.js";

export const L7_RESOURCE_TYPE_URL = "type.googleapis.com/ambient.waypoint.v1.L7Resource";

export interface L7Resource {
  /** Kubernetes kind: "VirtualService", "DestinationRule", "AuthorizationPolicy", "Gateway", … */
  kind: string;
  /** As written, e.g. "networking.istio.io/v1"; the spec is not converted between versions. */
  apiVersion: string;
  namespace: string;
  name: string;
  /** The object's `spec` as parsed JSON; `undefined` when the object has none. */
  spec: unknown;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

/**
 * The xDS resource name of an L7Resource: "<Kind>/<namespace>/<name>". Two kinds share the name
 * Gateway: Istio's (networking.istio.io) is "Gateway.networking.istio.io/<namespace>/<name>", so it
 * never replaces the Gateway API object of the same name.
 */
export function l7ResourceName(
  resource: Pick<L7Resource, "kind" | "namespace" | "name" | "apiVersion">,
): string {
  const istioGateway = resource.kind === "Gateway" && resource.apiVersion.startsWith("networking.istio.io/");
  return `${istioGateway ? "Gateway.networking.istio.io" : resource.kind}/${resource.namespace}/${resource.name}`;
}

/** The xDS resource name of a Secret: only a proxy of the Secret's namespace may hold it (delta-stream.ts). */
export function isSecretResourceName(name: string): { namespace: string } | undefined {
  if (!name.startsWith("Secret/")) return undefined;
  const [, namespace] = name.split("/");
  return namespace ? { namespace } : undefined;
}

/** Wire shape (protobufjs camelCase) of ambient.waypoint.v1.L7Resource. */
interface L7ResourceMessage {
  kind?: string;
  apiVersion?: string;
  namespace?: string;
  name?: string;
  specJson?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export function encodeL7Resource(resource: L7Resource): Uint8Array {
  const type = protos().l7ResourceType;
  // proto3 encoders leave default values out; protobufjs writes whatever is assigned, so only
  // non-empty fields are assigned here. That keeps our bytes equal to a Go encoder's.
  const message: L7ResourceMessage = {};
  if (resource.kind) message.kind = resource.kind;
  if (resource.apiVersion) message.apiVersion = resource.apiVersion;
  if (resource.namespace) message.namespace = resource.namespace;
  if (resource.name) message.name = resource.name;
  const specJson = canonicalJson(resource.spec);
  if (specJson) message.specJson = specJson;
  const labels = sortedMap(resource.labels);
  if (labels) message.labels = labels;
  const annotations = sortedMap(resource.annotations);
  if (annotations) message.annotations = annotations;
  return type.encode(type.fromObject(message)).finish();
}

/**
 * Decodes and checks one resource. `resourceName`, when given, labels errors and must agree with
 * the resource's own kind, namespace and name: a mismatch means the sender is broken, and applying
 * the object under the wrong name could make it replace or shadow another one.
 */
export function decodeL7Resource(bytes: Uint8Array, resourceName = ""): L7Resource {
  const type = protos().l7ResourceType;
  let message: L7ResourceMessage;
  try {
    message = type.toObject(type.decode(bytes), { defaults: true, objects: true }) as L7ResourceMessage;
  } catch (err) {
    throw decodeError(type, resourceName, errorMessage(err), err);
  }
  const kind = message.kind ?? "";
  const name = message.name ?? "";
  const namespace = message.namespace ?? "";
  if (!kind || !name) throw decodeError(type, resourceName, "kind and name are required");
  const own = l7ResourceName({ kind, namespace, name, apiVersion: message.apiVersion ?? "" });
  if (resourceName && resourceName !== own) {
    throw decodeError(type, resourceName, `the resource describes ${own}`);
  }
  let spec: unknown;
  if (message.specJson) {
    try {
      spec = JSON.parse(message.specJson);
    } catch (err) {
      throw decodeError(type, resourceName || own, `spec_json is not valid JSON: ${errorMessage(err)}`, err);
    }
  }
  return {
    kind,
    apiVersion: message.apiVersion ?? "",
    namespace,
    name,
    spec,
    labels: { ...(message.labels ?? {}) },
    annotations: { ...(message.annotations ?? {}) },
  };
}

function decodeError(
  type: protobuf.Type,
  resourceName: string,
  reason: string,
  cause?: unknown,
): AmbientError {
  const typeName = type.fullName.slice(1);
  const label = resourceName ? ` "${resourceName}"` : "";
  return new AmbientError(ErrorCode.XDS_DECODE, `cannot decode ${typeName}${label}: ${reason}`, {
    ...(cause === undefined ? {} : { cause }),
    details: { type: typeName, resource: resourceName },
  });
}

/**
 * JSON with every object's keys sorted, so that the same spec written with its keys in another
 * order (a YAML edit that moves lines) has the same bytes and version. `undefined` gives "".
 */
function canonicalJson(value: unknown): string {
  if (value === undefined) return "";
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v === null || typeof v !== "object" || Array.isArray(v)) return v;
    const obj = v as Record<string, unknown>;
    const sorted: Record<string, unknown> = {};
    for (const key of Object.keys(obj).sort()) sorted[key] = obj[key];
    return sorted;
  });
}

function sortedMap(map: Record<string, string> | undefined): Record<string, string> | undefined {
  const keys = Object.keys(map ?? {});
  if (keys.length === 0) return undefined;
  const out: Record<string, string> = {};
  for (const key of keys.sort()) out[key] = map![key]!;
  return out;
}
