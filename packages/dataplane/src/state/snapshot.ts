// JSON views of the xDS state for the admin endpoint's /config_dump and `ambientctl
// ztunnel-config`: the same fields as the xDS types, with byte addresses printed as IP text so the
// dump is readable and diffable.

import type {
  AddressMatch,
  Authorization,
  GatewayAddress,
  Match,
  NetworkAddress,
  Port,
  Service,
  Workload,
} from "@ambient/core";
import { cidrText, ipFromBytes } from "@ambient/core";

export interface WorkloadJson
  extends Omit<Workload, "addresses" | "waypoint" | "services" | "locality" | "hostname"> {
  addresses: string[];
  hostname?: string;
  waypoint?: GatewayJson;
  services: Record<string, Port[]>;
  locality?: Workload["locality"];
}

export interface ServiceJson extends Omit<Service, "addresses" | "waypoint"> {
  /** "<ip>", or "<network>/<ip>" off the default network. */
  addresses: string[];
  waypoint?: GatewayJson;
  /** uids of the workloads that serve the service. */
  endpoints: string[];
}

export interface GatewayJson {
  /** "<ns>/<hostname>" or an address as in `addresses`. */
  destination: string;
  hboneMtlsPort: number;
}

export type MatchJson = {
  [K in keyof Match]: Match[K] extends AddressMatch[] ? string[] : Match[K];
};

export interface AuthorizationJson extends Omit<Authorization, "rules"> {
  rules: { clauses: { matches: MatchJson[] }[] }[];
}

export interface StateSnapshot {
  workloads: WorkloadJson[];
  services: ServiceJson[];
  policies: AuthorizationJson[];
}

export function workloadJson(w: Workload): WorkloadJson {
  const { addresses, waypoint, services, locality, hostname, ...rest } = w;
  const out: WorkloadJson = {
    ...rest,
    addresses: addresses.map(bytesText),
    services: Object.fromEntries(Object.entries(services).map(([key, list]) => [key, list.ports])),
  };
  if (hostname) out.hostname = hostname;
  if (waypoint) out.waypoint = gatewayJson(waypoint);
  if (locality) out.locality = locality;
  return out;
}

export function serviceJson(s: Service, endpoints: string[]): ServiceJson {
  const { addresses, waypoint, ...rest } = s;
  const out: ServiceJson = { ...rest, addresses: addresses.map(networkAddressText), endpoints };
  if (waypoint) out.waypoint = gatewayJson(waypoint);
  return out;
}

export function authorizationJson(a: Authorization): AuthorizationJson {
  return {
    ...a,
    rules: a.rules.map((rule) => ({
      clauses: rule.clauses.map((clause) => ({ matches: clause.matches.map(matchJson) })),
    })),
  };
}

function matchJson(m: Match): MatchJson {
  const cidrs = (list: AddressMatch[]) => list.map((a) => cidrText(a.address, a.length));
  return {
    ...m,
    sourceIps: cidrs(m.sourceIps),
    notSourceIps: cidrs(m.notSourceIps),
    destinationIps: cidrs(m.destinationIps),
    notDestinationIps: cidrs(m.notDestinationIps),
  };
}

function gatewayJson(g: GatewayAddress): GatewayJson {
  const destination = g.hostname
    ? `${g.hostname.namespace}/${g.hostname.hostname}`
    : g.address
      ? networkAddressText(g.address)
      : "";
  return { destination, hboneMtlsPort: g.hboneMtlsPort };
}

function networkAddressText(a: NetworkAddress): string {
  const ip = bytesText(a.address);
  return a.network ? `${a.network}/${ip}` : ip;
}

function bytesText(bytes: Uint8Array): string {
  return ipFromBytes(bytes) ?? `<${bytes.length} bytes>`;
}
