// Loads Ambient's .proto files (packages/core/proto) once, on first use, into one protobufjs Root.
// From it come the protobufjs Types the codecs use (Address, Authorization, L7Resource), and the grpc-js
// service definitions for Delta ADS and the CA, so both views always agree on every field number.

import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { MethodDefinition, ServiceDefinition } from "@grpc/grpc-js";
import { fromJSON, type Options } from "@grpc/proto-loader";
import protobuf from "protobufjs";

const PROTO_FILES = [
  "istio/workload/workloadapi.proto",
  "istio/security/authorization.proto",
  "istio/ca/ca.proto",
  "envoy/service/discovery/v3/discovery.proto",
  "ambient/waypoint/v1/config.proto",
];

/** How grpc-js turns wire messages into objects: the shapes in `wire.ts` assume these. */
const GRPC_OPTIONS: Options = {
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
};

export const ADS_SERVICE_NAME = "envoy.service.discovery.v3.AggregatedDiscoveryService";
export const CA_SERVICE_NAME = "istio.v1.auth.IstioCertificateService";

export interface LoadedProtos {
  root: protobuf.Root;
  addressType: protobuf.Type;
  authorizationType: protobuf.Type;
  /** ambient.waypoint.v1.L7Resource: the waypoint's L7 objects (waypoint-config.ts). */
  l7ResourceType: protobuf.Type;
  /** For `server.addService`: the AggregatedDiscoveryService (delta method only). */
  adsService: ServiceDefinition;
  /** For `server.addService`: istio.v1.auth.IstioCertificateService. */
  caService: ServiceDefinition;
  deltaAggregatedResources: MethodDefinition<unknown, unknown>;
  createCertificate: MethodDefinition<unknown, unknown>;
}

let loaded: LoadedProtos | undefined;

/** The parsed protos. Parsing takes a few milliseconds, so it waits for the first caller. */
export function protos(): LoadedProtos {
  loaded ??= load();
  return loaded;
}

/**
 * The `proto/` folder of @ambient/core. Walks up from this module, so it works both from `src/xds`
 * (vitest, source condition) and from `dist/xds` (built package), which sit at the same depth today
 * but need not stay there.
 */
export function protoDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, "proto");
    if (existsSync(join(candidate, PROTO_FILES[0]!))) return candidate;
    const parent = dirname(dir);
    if (parent === dir)
      throw new Error(`proto/${PROTO_FILES[0]} not found above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
}

function load(): LoadedProtos {
  const dir = protoDir();
  const root = new protobuf.Root();
  // google/protobuf/*.proto (Any, Struct, Empty, Duration) are bundled with protobufjs: returning the
  // bare name lets protobufjs use its bundled copy. Everything else is ours, under proto/.
  root.resolvePath = (_origin, target) =>
    target.startsWith("google/protobuf/") ? target : join(dir, target);
  root.loadSync(PROTO_FILES, { keepCase: false });
  root.resolveAll();

  const definitions = fromJSON(root.toJSON(), GRPC_OPTIONS);
  const service = (name: string) => {
    const def = definitions[name];
    // Message and enum definitions carry a `format`; a service is a plain map of its methods.
    if (!def || "format" in def) throw new Error(`service ${name} missing from the protos`);
    return def as unknown as ServiceDefinition;
  };
  const adsService = service(ADS_SERVICE_NAME);
  const caService = service(CA_SERVICE_NAME);

  return {
    root,
    addressType: root.lookupType("istio.workload.Address"),
    authorizationType: root.lookupType("istio.security.Authorization"),
    l7ResourceType: root.lookupType("ambient.waypoint.v1.L7Resource"),
    adsService,
    caService,
    deltaAggregatedResources: method(adsService, "DeltaAggregatedResources"),
    createCertificate: method(caService, "CreateCertificate"),
  };
}

function method(service: ServiceDefinition, name: string): MethodDefinition<unknown, unknown> {
  const def = service[name];
  if (!def) throw new Error(`method ${name} missing from the protos`);
  return def as MethodDefinition<unknown, unknown>;
}
