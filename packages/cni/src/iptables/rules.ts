// The redirection rules, as data: in-pod capture (Istio's in-pod ambient rules, with our chain
// names) and the host's probe SNAT. Pure; rules are written exactly as iptables-save prints them,
// so the reconciler can tell "already in place" from "needs a rewrite" by comparing lines.

import { isIPv4, isIPv6 } from "node:net";
import { IptablesError, IptablesErrorCode } from "./errors.js";

export type Family = "ipv4" | "ipv6";
export type Table = "mangle" | "nat";

export const CHAIN_PREROUTING = "AMBIENT_PRERT";
export const CHAIN_OUTPUT = "AMBIENT_OUTPUT";
export const CHAIN_HOST_POSTROUTING = "AMBIENT_POSTRT";

/** ztunnel's own sockets in a pod carry SO_MARK 1337; must match ztunnel's in-pod socket mark. */
export const ZTUNNEL_MARK = 0x539;
/** Connmark for connections ztunnel opened into the pod, restored on the app's replies. */
export const CONN_MARK = 0x111;
const MASK = "0xfff";
const ZTUNNEL_MARK_MATCH = `0x${ZTUNNEL_MARK.toString(16)}/${MASK}`;
const CONN_MARK_MATCH = `0x${CONN_MARK.toString(16)}/${MASK}`;

export const PORT_OUTBOUND = 15001;
export const PORT_INBOUND_PLAINTEXT = 15006;
export const PORT_INBOUND_HBONE = 15008;
/** ztunnel's DNS proxy in every pod (UDP and TCP), where DNS capture sends port 53. */
export const PORT_DNS_PROXY = 15053;

/** Where the host SNATs kubelet probes, so the pod can tell them from kube-proxy'd traffic (Istio's). */
export const PROBE_SNAT_V4 = "169.254.7.127";
export const PROBE_SNAT_V6 = "fd16:9254:7127:1337:ffff:ffff:ffff:ffff";

/** Replies of connections marked CONN_MARK are routed locally (ip rule → table 100), as Istio does. */
export const ROUTE_TABLE = 100;
export const ROUTE_RULE_PRIORITY = 32764;

/** Our part of one table: the chains we own and every rule we want, jumps into them included. */
export interface TableRules {
  table: Table;
  /** Chains we own in this table, created if missing and flushed on every rewrite. */
  chains: readonly string[];
  /** `-A CHAIN ...` lines, in order, exactly as iptables-save prints them. */
  rules: readonly string[];
}

/** What we manage in one netns and family: which chains are ours, and what they should hold. */
export interface RuleSet {
  family: Family;
  /** Tables (and within them the chains) we own; anything else in the netns is somebody else's. */
  owned: readonly { table: Table; chains: readonly string[] }[];
  tables: readonly TableRules[];
}

const FAMILY = {
  ipv4: { loopback: "127.0.0.1/32", probe: PROBE_SNAT_V4, host: "32" },
  ipv6: { loopback: "::1/128", probe: PROBE_SNAT_V6, host: "128" },
} as const;

export const IN_POD_OWNED: RuleSet["owned"] = [
  { table: "mangle", chains: [CHAIN_PREROUTING, CHAIN_OUTPUT] },
  { table: "nat", chains: [CHAIN_PREROUTING, CHAIN_OUTPUT] },
];

export const HOST_OWNED: RuleSet["owned"] = [{ table: "nat", chains: [CHAIN_HOST_POSTROUTING] }];

export interface InPodRuleOptions {
  /**
   * Also send the pod's DNS (UDP and TCP port 53, to anything but loopback, not ztunnel's own) to
   * ztunnel's DNS proxy on 15053, as Istio's in-pod rules do with DNS capture on. ztunnel asks
   * its upstream from its own netns, so unlike a sidecar no conntrack zones are needed to keep
   * the proxy's query and the app's apart.
   */
  dnsCapture?: boolean;
}

/** The in-pod capture rules for one family (IPv6 differs only in loopback and probe addresses). */
export function inPodRules(family: Family, opts: InPodRuleOptions = {}): RuleSet {
  const { loopback, probe, host } = FAMILY[family];
  const P = CHAIN_PREROUTING;
  const O = CHAIN_OUTPUT;
  return {
    family,
    owned: IN_POD_OWNED,
    tables: [
      {
        table: "mangle",
        chains: [P, O],
        rules: [
          `-A PREROUTING -j ${P}`,
          `-A OUTPUT -j ${O}`,
          // A packet of ztunnel's own arriving over lo (ztunnel → app in this pod): remember the
          // connection, so the app's replies get the mark back and are routed to ztunnel locally.
          `-A ${P} -m mark --mark ${ZTUNNEL_MARK_MATCH} -j CONNMARK --set-xmark ${CONN_MARK_MATCH}`,
          `-A ${O} -m connmark --mark ${CONN_MARK_MATCH} -j CONNMARK --restore-mark --nfmask 0xffffffff --ctmask 0xffffffff`,
        ],
      },
      {
        table: "nat",
        chains: [P, O],
        rules: [
          `-A PREROUTING -j ${P}`,
          `-A OUTPUT -j ${O}`,
          // Kubelet probes, SNATed on the host to the probe address: straight to the app.
          `-A ${P} -s ${probe}/${host} -p tcp -m tcp -j ACCEPT`,
          // Inbound: everything but HBONE (15008, ztunnel listens there itself) and ztunnel's own
          // packets goes to the plaintext inbound listener.
          `-A ${P} ! -d ${loopback} -p tcp -m tcp ! --dport ${PORT_INBOUND_HBONE} -m mark ! --mark ${ZTUNNEL_MARK_MATCH} -j REDIRECT --to-ports ${PORT_INBOUND_PLAINTEXT}`,
          // Replies to the probe address leave as they are.
          `-A ${O} -d ${probe}/${host} -p tcp -m tcp -j ACCEPT`,
          `-A ${O} -p tcp -m mark --mark ${CONN_MARK_MATCH} -j ACCEPT`,
          // DNS capture: before the lo rule, so a nameserver on loopback (systemd-resolved: 127.0.0.53) is captured too.
          ...(opts.dnsCapture
            ? (["udp", "tcp"] as const).map(
                (p) =>
                  `-A ${O} ! -d ${loopback} -p ${p} -m ${p} --dport 53 -m mark ! --mark ${ZTUNNEL_MARK_MATCH} -j REDIRECT --to-ports ${PORT_DNS_PROXY}`,
              )
            : []),
          // The app calling its own pod address goes over lo: not through ztunnel (appN → appN).
          `-A ${O} ! -d ${loopback} -o lo -j ACCEPT`,
          // Outbound: everything not to loopback and not from ztunnel goes to the outbound listener.
          `-A ${O} ! -d ${loopback} -p tcp -m mark ! --mark ${ZTUNNEL_MARK_MATCH} -j REDIRECT --to-ports ${PORT_OUTBOUND}`,
        ],
      },
    ],
  };
}

/**
 * The host's probe SNAT for these pod IPs of one family: connections from a local socket on the
 * node (kubelet; forwarded traffic such as kube-proxy's has no local socket) to an enrolled pod
 * leave with the probe address as source. One rule per pod, sorted, duplicates dropped.
 */
export function hostProbeRules(family: Family, podIps: readonly string[]): RuleSet {
  const { probe, host } = FAMILY[family];
  const ips = podIpsOf(family, podIps);
  const C = CHAIN_HOST_POSTROUTING;
  const tables: TableRules[] =
    ips.length === 0
      ? []
      : [
          {
            table: "nat",
            chains: [C],
            rules: [
              `-A POSTROUTING -j ${C}`,
              ...ips.map(
                (ip) =>
                  `-A ${C} -d ${ip}/${host} -p tcp -m owner --socket-exists -j SNAT --to-source ${probe}`,
              ),
            ],
          },
        ];
  return { family, owned: HOST_OWNED, tables };
}

/** Nothing of ours: the target state of a removal. */
export function noRules(family: Family, owned: RuleSet["owned"]): RuleSet {
  return { family, owned, tables: [] };
}

/** The iptables-restore text that creates `rules` in a namespace without any of ours yet. */
export function renderRestore(rules: RuleSet): string {
  const out: string[] = [];
  for (const t of rules.tables) {
    out.push(`*${t.table}`, ...t.chains.map((c) => `:${c} - [0:0]`), ...t.rules, "COMMIT");
  }
  return out.length === 0 ? "" : `${out.join("\n")}\n`;
}

/** Validated, canonical, sorted and deduplicated IPs of one family; anything else is an error. */
export function podIpsOf(family: Family, podIps: readonly string[]): string[] {
  const out = new Set<string>();
  for (const ip of podIps) {
    if (isIPv4(ip)) {
      if (family === "ipv4") out.add(ip);
    } else if (isIPv6(ip) && !ip.includes("%")) {
      if (family === "ipv6") out.add(canonicalIPv6(ip));
    } else {
      // Checked here because the address goes into iptables-restore input.
      throw new IptablesError(
        IptablesErrorCode.INVALID_ARGUMENT,
        `not a pod IP address: ${JSON.stringify(ip)}`,
        {
          command: "",
          exitCode: null,
          signal: null,
          stderr: "",
          netns: undefined,
        },
      );
    }
  }
  return [...out].sort();
}

export function hasIPv6(podIps: readonly string[]): boolean {
  return podIps.some((ip) => isIPv6(ip));
}

/** iptables-save prints IPv6 addresses in RFC 5952 form; URL parsing gives us the same. */
function canonicalIPv6(ip: string): string {
  return new URL(`http://[${ip}]/`).hostname.slice(1, -1);
}
