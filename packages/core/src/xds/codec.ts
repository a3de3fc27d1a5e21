// Converts the TypeScript shapes of types.ts to protobuf bytes and back. Encoding is canonical
// (proto3 defaults left out, map keys sorted) so equal resources give equal bytes and equal
// versions. Decoding yields exactly the types.ts shapes, or an XDS_DECODE error a client NACKs.

import protobuf from "protobufjs";
import { AmbientError, ErrorCode, errorMessage } from "../errors/errors.js";
import { protos } from "./proto.js";
import type { Address, Authorization } from "./types.js";
import type { WireAny } from "./wire.js";

type Plain = Record<string, unknown>;

/** protobufjs output options the normalizer below expects. */
const TO_OBJECT: protobuf.IConversionOptions = {
  enums: String,
  longs: Number,
  defaults: true,
  arrays: true,
  objects: true,
  oneofs: false,
};

export function encodeAddress(address: Address): Uint8Array {
  return encode(protos().addressType, address);
}

/** `resourceName` only labels the error. */
export function decodeAddress(bytes: Uint8Array, resourceName = ""): Address {
  return decode(protos().addressType, bytes, resourceName) as unknown as Address;
}

export function encodeAuthorization(authorization: Authorization): Uint8Array {
  return encode(protos().authorizationType, authorization);
}

export function decodeAuthorization(bytes: Uint8Array, resourceName = ""): Authorization {
  return decode(protos().authorizationType, bytes, resourceName) as unknown as Authorization;
}

/** Wraps encoded bytes in a google.protobuf.Any, as Resource.resource carries them. */
export function packAny(typeUrl: string, bytes: Uint8Array): WireAny {
  return { type_url: typeUrl, value: bytes };
}

/** The xDS resource name of an Address: a workload's uid, or "<namespace>/<hostname>". */
export function addressResourceName(address: Address): string {
  if (address.workload) return address.workload.uid;
  return `${address.service.namespace}/${address.service.hostname}`;
}

/** The xDS resource name of an Authorization: "<namespace>/<name>". */
export function authorizationResourceName(authorization: Authorization): string {
  return `${authorization.namespace}/${authorization.name}`;
}

// ---- encoding ----

function encode(type: protobuf.Type, value: object): Uint8Array {
  const message = type.fromObject(value as Plain);
  canonicalize(type, message as unknown as Plain);
  return type.encode(message).finish();
}

/**
 * protobufjs writes every field that was assigned, even to its default. proto3 encoders (Go's, so
 * istiod's) leave defaults out; so do we, except inside a oneof where "set to the default" is
 * meaningful (StringMatch{exact: ""}).
 */
function canonicalize(type: protobuf.Type, message: Plain): void {
  for (const field of type.fieldsArray) {
    if (!Object.hasOwn(message, field.name)) continue;
    const value = message[field.name];
    const child = field.resolvedType instanceof protobuf.Type ? field.resolvedType : undefined;
    if (field.map) {
      const entries = value as Plain;
      const sorted: Plain = {};
      for (const key of Object.keys(entries).sort()) {
        if (child) canonicalize(child, entries[key] as Plain);
        sorted[key] = entries[key];
      }
      message[field.name] = sorted;
    } else if (field.repeated) {
      const items = value as unknown[];
      if (child) for (const item of items) canonicalize(child, item as Plain);
      if (items.length === 0) delete message[field.name];
    } else if (value == null) {
      delete message[field.name];
    } else if (child) {
      canonicalize(child, value as Plain);
    } else if (!field.partOf && isProto3Default(value)) {
      delete message[field.name];
    }
  }
}

function isProto3Default(value: unknown): boolean {
  return (
    value === "" || value === 0 || value === false || (value instanceof Uint8Array && value.length === 0)
  );
}

// ---- decoding ----

function decode(type: protobuf.Type, bytes: Uint8Array, resourceName: string): Plain {
  try {
    const object = type.toObject(type.decode(bytes), TO_OBJECT);
    normalize(type, object, type.name);
    return object;
  } catch (err) {
    const label = resourceName ? ` "${resourceName}"` : "";
    throw new AmbientError(
      ErrorCode.XDS_DECODE,
      `cannot decode ${type.fullName.slice(1)}${label}: ${errorMessage(err)}`,
      {
        cause: err,
        details: { type: type.fullName.slice(1), resource: resourceName },
      },
    );
  }
}

/**
 * Brings protobufjs' output to the types.ts shape: unset messages become absent keys, bytes become
 * copies (a decoded Buffer is a view that would pin the whole gRPC message in memory), and enum
 * numbers this build does not know are refused rather than passed on as numbers.
 */
function normalize(type: protobuf.Type, object: Plain, path: string): void {
  for (const field of type.fieldsArray) {
    const value = object[field.name];
    if (value === undefined) continue;
    if (value === null) {
      delete object[field.name];
      continue;
    }
    const at = `${path}.${field.name}`;
    if (field.map) {
      const entries = value as Plain;
      for (const key of Object.keys(entries))
        entries[key] = normalizeValue(field, entries[key], `${at}["${key}"]`);
    } else if (field.repeated) {
      const items = value as unknown[];
      for (let i = 0; i < items.length; i++) items[i] = normalizeValue(field, items[i], `${at}[${i}]`);
    } else {
      object[field.name] = normalizeValue(field, value, at);
    }
  }
  CHECKS[type.fullName]?.(object, path);
}

function normalizeValue(field: protobuf.Field, value: unknown, at: string): unknown {
  const type = field.resolvedType;
  if (type instanceof protobuf.Enum) {
    if (typeof value === "number") throw new Error(`${at}: unknown ${type.name} value ${value}`);
    return value;
  }
  if (type instanceof protobuf.Type) {
    normalize(type, value as Plain, at);
    return value;
  }
  if (field.type === "bytes") return new Uint8Array(value as Uint8Array);
  return value;
}

/** Rules the .proto cannot express, per message, run after the message's fields are normalized. */
const CHECKS: Record<string, (object: Plain, path: string) => void> = {
  ".istio.workload.Address": (object, path) => {
    if (object["workload"] === undefined && object["service"] === undefined) {
      throw new Error(`${path}: neither workload nor service is set`);
    }
  },
  // proto3 cannot tell UNKNOWN from unset; types.ts models "unset" as an absent key.
  ".istio.workload.Port": (object) => {
    if (object["appProtocol"] === "UNKNOWN") delete object["appProtocol"];
  },
  ".istio.security.StringMatch": (object, path) => {
    if (Object.keys(object).length !== 1) throw new Error(`${path}: no exact, prefix, suffix or presence`);
  },
  // Ignoring a restriction we cannot evaluate would make an ALLOW rule admit more than intended.
  ".istio.security.Match": (object, path) => {
    for (const key of ["serviceAccounts", "notServiceAccounts"]) {
      if ((object[key] as unknown[]).length > 0) throw new Error(`${path}.${key} is not supported`);
      delete object[key];
    }
  },
};
