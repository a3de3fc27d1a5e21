import protobuf from "protobufjs";
import { describe, expect, it } from "vitest";
import { ErrorCode } from "../errors/errors.js";
import {
  addressResourceName,
  decodeAddress,
  decodeAuthorization,
  encodeAddress,
  encodeAuthorization,
  packAny,
} from "./codec.js";
import { type Address, type Authorization, emptyMatch, type Service, type Workload } from "./types.js";

const ip = (...octets: number[]) => new Uint8Array(octets);

function workload(overrides: Partial<Workload> = {}): Workload {
  return {
    uid: "Kubernetes//Pod/default/echo-7d9c",
    name: "echo-7d9c",
    namespace: "default",
    addresses: [ip(10, 0, 0, 7), ip(0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7)],
    network: "net-1",
    tunnelProtocol: "HBONE",
    trustDomain: "cluster.local",
    serviceAccount: "echo",
    waypoint: {
      hostname: { namespace: "default", hostname: "waypoint.default.svc.cluster.local" },
      hboneMtlsPort: 15008,
    },
    node: "node-a",
    canonicalName: "echo",
    canonicalRevision: "v1",
    workloadType: "POD",
    workloadName: "echo",
    authorizationPolicies: ["default/allow-sleep"],
    status: "UNHEALTHY",
    clusterId: "Kubernetes",
    hostname: "",
    services: {
      "default/echo.default.svc.cluster.local": {
        ports: [{ servicePort: 80, targetPort: 8080, appProtocol: "HTTP2" }],
      },
      "default/alias.default.svc.cluster.local": { ports: [{ servicePort: 443, targetPort: 8443 }] },
    },
    locality: { region: "eu", zone: "eu-1a", subzone: "" },
    ...overrides,
  };
}

function service(overrides: Partial<Service> = {}): Service {
  return {
    name: "echo",
    namespace: "default",
    hostname: "echo.default.svc.cluster.local",
    addresses: [{ network: "", address: ip(10, 96, 0, 10) }],
    ports: [
      { servicePort: 80, targetPort: 8080, appProtocol: "HTTP11" },
      { servicePort: 9090, targetPort: 0, appProtocol: "GRPC" },
    ],
    subjectAltNames: ["spiffe://cluster.local/ns/default/sa/echo"],
    waypoint: { address: { network: "", address: ip(10, 96, 0, 99) }, hboneMtlsPort: 15008 },
    loadBalancing: { routingPreference: ["NETWORK", "REGION", "ZONE"], mode: "FAILOVER" },
    ...overrides,
  };
}

function authorization(): Authorization {
  return {
    name: "allow-sleep",
    namespace: "default",
    scope: "WORKLOAD_SELECTOR",
    action: "DENY",
    dryRun: true,
    rules: [
      {
        clauses: [
          {
            matches: [
              {
                ...emptyMatch(),
                namespaces: [{ exact: "default" }, { prefix: "team-" }],
                principals: [{ suffix: "/sa/sleep" }, { presence: {} }, { exact: "" }],
                notSourceIps: [{ address: ip(192, 168, 0, 0), length: 16 }],
              },
            ],
          },
          { matches: [{ ...emptyMatch(), destinationPorts: [8080, 9090], notDestinationPorts: [22] }] },
        ],
      },
      { clauses: [] },
    ],
  };
}

describe("Address codec", () => {
  it("round-trips a workload", () => {
    const address: Address = { workload: workload() };
    expect(decodeAddress(encodeAddress(address))).toEqual(address);
  });

  it("round-trips a service", () => {
    const address: Address = { service: service() };
    expect(decodeAddress(encodeAddress(address))).toEqual(address);
  });

  it("gives absent optional messages and empty repeated fields for a minimal workload", () => {
    const bytes = encodeAddress({ workload: workload({ waypoint: undefined, locality: undefined }) });
    const minimal = new protobuf.Writer();
    minimal
      .uint32((1 << 3) | 2)
      .fork()
      .uint32((20 << 3) | 2)
      .string("uid-1")
      .ldelim();
    const decoded = decodeAddress(minimal.finish());
    expect(decoded.workload).toEqual({
      uid: "uid-1",
      name: "",
      namespace: "",
      addresses: [],
      network: "",
      tunnelProtocol: "NONE",
      trustDomain: "",
      serviceAccount: "",
      node: "",
      canonicalName: "",
      canonicalRevision: "",
      workloadType: "DEPLOYMENT",
      workloadName: "",
      authorizationPolicies: [],
      status: "HEALTHY",
      clusterId: "",
      hostname: "",
      services: {},
    });
    expect(decodeAddress(bytes).workload).not.toHaveProperty("waypoint");
  });

  it("decodes bytes as plain Uint8Array copies", () => {
    const decoded = decodeAddress(encodeAddress({ workload: workload() }));
    const first = decoded.workload!.addresses[0]!;
    expect(first.constructor).toBe(Uint8Array);
    expect(first.byteLength).toBe(first.buffer.byteLength);
  });

  it("encodes canonically: map order does not change the bytes", () => {
    const a = workload();
    const reversed = workload({ services: Object.fromEntries(Object.entries(a.services).reverse()) });
    expect(Buffer.from(encodeAddress({ workload: reversed }))).toEqual(
      Buffer.from(encodeAddress({ workload: a })),
    );
  });

  it("leaves proto3 defaults off the wire", () => {
    const bytes = encodeAddress({ workload: { ...workload(), ...bareWorkloadDefaults() } });
    // Only Address.workload (tag 0x0a), its length, and uid (field 20: tag 0xa2 0x01) + "u".
    expect(Array.from(bytes)).toEqual([0x0a, 0x04, 0xa2, 0x01, 0x01, 0x75]);
  });

  it("names resources the way Istio does", () => {
    expect(addressResourceName({ workload: workload() })).toBe("Kubernetes//Pod/default/echo-7d9c");
    expect(addressResourceName({ service: service() })).toBe("default/echo.default.svc.cluster.local");
  });

  it("refuses an Address with neither workload nor service", () => {
    expect(() => decodeAddress(new Uint8Array(), "ns/empty")).toThrowError(
      expect.objectContaining({
        code: ErrorCode.XDS_DECODE,
        details: { type: "istio.workload.Address", resource: "ns/empty" },
      }),
    );
  });

  it("refuses truncated bytes, naming the resource", () => {
    const bytes = encodeAddress({ workload: workload() });
    expect(() =>
      decodeAddress(bytes.subarray(0, bytes.length - 3), "Kubernetes//Pod/default/echo-7d9c"),
    ).toThrowError(/cannot decode istio.workload.Address "Kubernetes\/\/Pod\/default\/echo-7d9c"/);
  });

  it("refuses an enum value this build does not know", () => {
    // Service.load_balancing(8).mode(2) = 99 (no such LoadBalancing.Mode, in Istio or here).
    expect(() => decodeAddress(serviceWithMode(99), "ns/svc")).toThrowError(
      /loadBalancing.mode: unknown Mode value 99/,
    );
  });

  it("round-trips a PASSTHROUGH service, Istio's mode 3 for a ServiceEntry with resolution NONE", () => {
    const address: Address = {
      service: service({
        waypoint: undefined,
        loadBalancing: { routingPreference: [], mode: "PASSTHROUGH" },
      }),
    };
    expect(decodeAddress(encodeAddress(address))).toEqual(address);
    expect(decodeAddress(serviceWithMode(3)).service?.loadBalancing).toEqual({
      routingPreference: [],
      mode: "PASSTHROUGH",
    });
  });

  it("round-trips a DNS endpoint: a workload with a hostname and no address", () => {
    const address: Address = {
      workload: workload({ addresses: [], hostname: "api.example.com", tunnelProtocol: "NONE" }),
    };
    expect(decodeAddress(encodeAddress(address))).toEqual(address);
  });
});

/** An Address holding only Service.load_balancing(8).mode(2) = `mode`, written field by field. */
function serviceWithMode(mode: number): Uint8Array {
  const w = new protobuf.Writer();
  w.uint32((2 << 3) | 2).fork();
  w.uint32((8 << 3) | 2)
    .fork()
    .uint32((2 << 3) | 0)
    .uint32(mode)
    .ldelim();
  w.ldelim();
  return w.finish();
}

function bareWorkloadDefaults(): Workload {
  return {
    uid: "u",
    name: "",
    namespace: "",
    addresses: [],
    network: "",
    tunnelProtocol: "NONE",
    trustDomain: "",
    serviceAccount: "",
    waypoint: undefined,
    node: "",
    canonicalName: "",
    canonicalRevision: "",
    workloadType: "DEPLOYMENT",
    workloadName: "",
    authorizationPolicies: [],
    status: "HEALTHY",
    clusterId: "",
    hostname: "",
    services: {},
    locality: undefined,
  };
}

describe("Authorization codec", () => {
  it("round-trips every match kind", () => {
    const policy = authorization();
    expect(decodeAuthorization(encodeAuthorization(policy))).toEqual(policy);
  });

  it("refuses a StringMatch with nothing set", () => {
    const w = new protobuf.Writer();
    w.uint32((5 << 3) | 2).fork(); // rules
    w.uint32((1 << 3) | 2).fork(); // clauses
    w.uint32((2 << 3) | 2).fork(); // matches
    w.uint32((1 << 3) | 2)
      .fork()
      .ldelim(); // namespaces: StringMatch{}
    w.ldelim().ldelim().ldelim();
    expect(() => decodeAuthorization(w.finish(), "ns/p")).toThrowError(
      /namespaces\[0\]: no exact, prefix, suffix or presence/,
    );
  });

  it("refuses service-account matches it cannot evaluate", () => {
    const w = new protobuf.Writer();
    w.uint32((5 << 3) | 2).fork();
    w.uint32((1 << 3) | 2).fork();
    w.uint32((2 << 3) | 2).fork();
    w.uint32((11 << 3) | 2)
      .fork()
      .uint32((1 << 3) | 2)
      .string("default")
      .ldelim();
    w.ldelim().ldelim().ldelim();
    expect(() => decodeAuthorization(w.finish(), "ns/p")).toThrowError(/serviceAccounts is not supported/);
  });
});

describe("field numbers on the wire", () => {
  it("reads a Workload written with raw field numbers", () => {
    const portList = new protobuf.Writer();
    portList.uint32((1 << 3) | 2).fork(); // PortList.ports = 1
    portList.uint32((1 << 3) | 0).uint32(80); // service_port = 1
    portList.uint32((2 << 3) | 0).uint32(8080); // target_port = 2
    portList.uint32((3 << 3) | 0).uint32(2); // app_protocol = 3 (HTTP2)
    portList.ldelim();
    const ports = portList.finish();

    const w = new protobuf.Writer();
    w.uint32((1 << 3) | 2).fork(); // Address.workload = 1
    w.uint32((20 << 3) | 2).string("c//Pod/ns/p"); // uid = 20
    w.uint32((3 << 3) | 2).bytes(ip(10, 0, 0, 1)); // addresses = 3
    w.uint32((5 << 3) | 0).uint32(1); // tunnel_protocol = 5 (HBONE)
    w.uint32((12 << 3) | 0).uint32(2); // workload_type = 12 (POD)
    w.uint32((16 << 3) | 2).string("ns/policy"); // authorization_policies = 16
    w.uint32((17 << 3) | 0).uint32(1); // status = 17 (UNHEALTHY)
    // services = 22: map entry { key = 1; value = 2 }
    w.uint32((22 << 3) | 2)
      .fork()
      .uint32((1 << 3) | 2)
      .string("ns/svc.ns.svc.cluster.local");
    w.uint32((2 << 3) | 2)
      .bytes(ports)
      .ldelim();
    w.uint32((24 << 3) | 2)
      .fork()
      .uint32((2 << 3) | 2)
      .string("zone-a")
      .ldelim(); // locality.zone
    w.ldelim();

    const decoded = decodeAddress(w.finish()).workload!;
    expect(decoded.uid).toBe("c//Pod/ns/p");
    expect(decoded.addresses).toEqual([ip(10, 0, 0, 1)]);
    expect(decoded.tunnelProtocol).toBe("HBONE");
    expect(decoded.workloadType).toBe("POD");
    expect(decoded.authorizationPolicies).toEqual(["ns/policy"]);
    expect(decoded.status).toBe("UNHEALTHY");
    expect(decoded.services).toEqual({
      "ns/svc.ns.svc.cluster.local": { ports: [{ servicePort: 80, targetPort: 8080, appProtocol: "HTTP2" }] },
    });
    expect(decoded.locality).toEqual({ region: "", zone: "zone-a", subzone: "" });
  });

  it("reads a Service written with raw field numbers", () => {
    const w = new protobuf.Writer();
    w.uint32((2 << 3) | 2).fork(); // Address.service = 2
    w.uint32((3 << 3) | 2).string("svc.ns.svc.cluster.local"); // hostname = 3
    w.uint32((4 << 3) | 2)
      .fork()
      .uint32((2 << 3) | 2)
      .bytes(ip(10, 96, 0, 1))
      .ldelim(); // addresses[].address
    w.uint32((7 << 3) | 2).fork(); // waypoint = 7
    w.uint32((1 << 3) | 2)
      .fork()
      .uint32((2 << 3) | 2)
      .string("wp.ns.svc")
      .ldelim(); // hostname.hostname
    w.uint32((3 << 3) | 0).uint32(15008); // hbone_mtls_port = 3
    w.ldelim();
    // load_balancing = 8 { routing_preference = 1 (packed) [NODE, CLUSTER]; mode = 2 STRICT }
    w.uint32((8 << 3) | 2)
      .fork()
      .uint32((1 << 3) | 2)
      .fork()
      .uint32(4)
      .uint32(5)
      .ldelim();
    w.uint32((2 << 3) | 0)
      .uint32(1)
      .ldelim();
    w.ldelim();

    const decoded = decodeAddress(w.finish()).service!;
    expect(decoded.hostname).toBe("svc.ns.svc.cluster.local");
    expect(decoded.addresses).toEqual([{ network: "", address: ip(10, 96, 0, 1) }]);
    expect(decoded.waypoint).toEqual({
      hostname: { namespace: "", hostname: "wp.ns.svc" },
      hboneMtlsPort: 15008,
    });
    expect(decoded.loadBalancing).toEqual({ routingPreference: ["NODE", "CLUSTER"], mode: "STRICT" });
  });

  it("reads an Authorization written with raw field numbers", () => {
    const w = new protobuf.Writer();
    w.uint32((1 << 3) | 2).string("deny-ssh"); // name = 1
    w.uint32((3 << 3) | 0).uint32(1); // scope = 3 (NAMESPACE)
    w.uint32((4 << 3) | 0).uint32(1); // action = 4 (DENY)
    w.uint32((5 << 3) | 2).fork(); // rules = 5
    w.uint32((1 << 3) | 2).fork(); // clauses = 1
    w.uint32((2 << 3) | 2).fork(); // matches = 2
    w.uint32((9 << 3) | 2)
      .fork()
      .uint32(22)
      .uint32(2222)
      .ldelim(); // destination_ports = 9 (packed)
    w.uint32((3 << 3) | 2)
      .fork()
      .uint32((4 << 3) | 2)
      .fork()
      .ldelim()
      .ldelim(); // principals[].presence
    w.uint32((5 << 3) | 2).fork(); // source_ips = 5
    w.uint32((1 << 3) | 2)
      .bytes(ip(10, 0, 0, 0))
      .uint32((2 << 3) | 0)
      .uint32(8); // address 1, length 2
    w.ldelim();
    w.ldelim().ldelim().ldelim();
    w.uint32((6 << 3) | 0).uint32(1); // dry_run = 6

    const decoded = decodeAuthorization(w.finish());
    expect(decoded).toEqual({
      name: "deny-ssh",
      namespace: "",
      scope: "NAMESPACE",
      action: "DENY",
      dryRun: true,
      rules: [
        {
          clauses: [
            {
              matches: [
                {
                  ...emptyMatch(),
                  destinationPorts: [22, 2222],
                  principals: [{ presence: {} }],
                  sourceIps: [{ address: ip(10, 0, 0, 0), length: 8 }],
                },
              ],
            },
          ],
        },
      ],
    });
  });

  it("packs an Any with the type URL", () => {
    expect(packAny("type.googleapis.com/istio.workload.Address", ip(1, 2))).toEqual({
      type_url: "type.googleapis.com/istio.workload.Address",
      value: ip(1, 2),
    });
  });
});
