// The gRPC messages of Delta ADS and the CA as grpc-js hands them over (proto-loader options in
// proto.ts: camelCase field names, enums by name, defaults filled in, unset messages as null), and
// conversions between Envoy's Node / google.protobuf.Struct and plain objects.

/**
 * google.protobuf.Any. protobufjs bundles it with its original snake_case field name, so
 * `type_url` stays snake_case while every other field here is camelCase.
 */
export interface WireAny {
  type_url: string;
  value: Uint8Array;
}

/** google.rpc.Status, the error detail of a NACK. */
export interface WireStatus {
  code: number;
  message: string;
  details?: WireAny[];
}

/** google.protobuf.Value: exactly one of the kinds is set. */
export interface WireValue {
  nullValue?: "NULL_VALUE";
  numberValue?: number;
  stringValue?: string;
  boolValue?: boolean;
  structValue?: WireStruct;
  listValue?: { values?: WireValue[] };
}

export interface WireStruct {
  fields?: Record<string, WireValue>;
}

export interface WireNode {
  id: string;
  cluster: string;
  metadata?: WireStruct | null;
  userAgentName?: string;
  userAgentVersion?: string;
}

export interface WireResource {
  name: string;
  version: string;
  resource: WireAny | null;
  aliases?: string[];
}

export interface DeltaDiscoveryRequest {
  node?: WireNode | null;
  typeUrl: string;
  resourceNamesSubscribe: string[];
  resourceNamesUnsubscribe: string[];
  initialResourceVersions: Record<string, string>;
  responseNonce: string;
  errorDetail?: WireStatus | null;
}

export interface DeltaDiscoveryResponse {
  systemVersionInfo: string;
  resources: WireResource[];
  typeUrl: string;
  removedResources: string[];
  nonce: string;
}

/** istio.v1.auth.IstioCertificateRequest. */
export interface IstioCertificateRequest {
  csr: string;
  /** Seconds. */
  validityDuration: number;
  metadata?: WireStruct | null;
}

/** istio.v1.auth.IstioCertificateResponse: PEM certificates, leaf first, root last. */
export interface IstioCertificateResponse {
  certChain: string[];
}

/** The client's description of itself, as the server's hooks and the CLI see it. */
export interface XdsNode {
  id: string;
  cluster: string;
  metadata: Record<string, unknown>;
  userAgentName?: string;
  userAgentVersion?: string;
}

export function nodeToWire(node: XdsNode): WireNode {
  return {
    id: node.id,
    cluster: node.cluster,
    metadata: structFromJson(node.metadata),
    userAgentName: node.userAgentName ?? "",
    userAgentVersion: node.userAgentVersion ?? "",
  };
}

export function nodeFromWire(node: WireNode | null | undefined): XdsNode {
  const out: XdsNode = {
    id: node?.id ?? "",
    cluster: node?.cluster ?? "",
    metadata: node?.metadata ? structToJson(node.metadata) : {},
  };
  if (node?.userAgentName) out.userAgentName = node.userAgentName;
  if (node?.userAgentVersion) out.userAgentVersion = node.userAgentVersion;
  return out;
}

/** A JSON object as a google.protobuf.Struct. Numbers become doubles, as in every Struct. */
export function structFromJson(obj: Record<string, unknown>): WireStruct {
  const fields: Record<string, WireValue> = {};
  for (const [key, value] of Object.entries(obj)) {
    if (value !== undefined) fields[key] = valueFromJson(value);
  }
  return { fields };
}

export function structToJson(struct: WireStruct): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(struct.fields ?? {})) out[key] = valueToJson(value);
  return out;
}

function valueFromJson(value: unknown): WireValue {
  if (value === null) return { nullValue: "NULL_VALUE" };
  if (typeof value === "number") return { numberValue: value };
  if (typeof value === "string") return { stringValue: value };
  if (typeof value === "boolean") return { boolValue: value };
  if (Array.isArray(value)) return { listValue: { values: value.map(valueFromJson) } };
  if (typeof value === "object") return { structValue: structFromJson(value as Record<string, unknown>) };
  // bigint, functions, symbols: no Struct equivalent; a string keeps the information visible.
  return { stringValue: String(value) };
}

function valueToJson(value: WireValue): unknown {
  if (value.structValue != null) return structToJson(value.structValue);
  if (value.listValue != null) return (value.listValue.values ?? []).map(valueToJson);
  if (value.stringValue != null) return value.stringValue;
  if (value.numberValue != null) return value.numberValue;
  if (value.boolValue != null) return value.boolValue;
  return null;
}
