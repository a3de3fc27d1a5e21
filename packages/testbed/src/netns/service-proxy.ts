// What kube-proxy does on a real node, for the netns mesh: a Service VIP reached from a pod that is
// not in the mesh (its traffic is not captured in-pod) is DNATed in the node netns to one of the
// Service's ready endpoints, picked at random as kube-proxy's iptables mode does. Pods in the mesh
// never get here: their rules hand VIP traffic to ztunnel inside the pod. One chain of our own per
// node, rewritten whole with `iptables-restore --noflush` whenever the manifests change.

import { isPod, type KubeObject } from "@ambient/kube";
import { run } from "./exec.js";
import { isService } from "./manifests-rewrite.js";

export const SERVICES_CHAIN = "NETNS-SERVICES";

interface ServicePortSpec {
  port: number;
  targetPort?: number | string;
  protocol?: string;
}

/** The DNAT rules (without the jump) for every Service VIP and TCP port with ready endpoints. */
export function serviceRules(objects: readonly KubeObject[]): string[] {
  const pods = objects.filter(isPod).filter((p) => p.status?.podIP && isReady(p));
  const rules: string[] = [];
  for (const svc of objects.filter(isService)) {
    const spec = svc.spec ?? {};
    const selector = (spec as { selector?: Record<string, string> }).selector;
    const vip = spec.clusterIP;
    if (!vip || vip === "None" || !selector || Object.keys(selector).length === 0) continue;
    const namespace = svc.metadata.namespace ?? "default";
    const members = pods.filter(
      (p) =>
        (p.metadata.namespace ?? "default") === namespace &&
        Object.entries(selector).every(([k, v]) => p.metadata.labels?.[k] === v),
    );
    for (const sp of ((spec as { ports?: ServicePortSpec[] }).ports ?? []).filter(
      (p) => (p.protocol ?? "TCP") === "TCP",
    )) {
      const targets = members
        .map((p) => ({ ip: p.status!.podIP!, port: targetPortOf(p, sp) }))
        .filter((t): t is { ip: string; port: number } => t.port !== undefined)
        .sort((a, b) => (a.ip < b.ip ? -1 : a.ip > b.ip ? 1 : 0));
      targets.forEach((t, i) => {
        const left = targets.length - i;
        const pick = left > 1 ? ` -m statistic --mode random --probability ${(1 / left).toFixed(5)}` : "";
        rules.push(
          `-A ${SERVICES_CHAIN} -d ${vip}/32 -p tcp -m tcp --dport ${sp.port}${pick} -j DNAT --to-destination ${t.ip}:${t.port}`,
        );
      });
    }
  }
  return rules;
}

/** Writes the chain in a node netns (and the jumps to it, once). */
export async function applyServiceRules(nodeNetns: string, rules: readonly string[]): Promise<void> {
  const input = ["*nat", `:${SERVICES_CHAIN} - [0:0]`, `-F ${SERVICES_CHAIN}`, ...rules, "COMMIT", ""].join(
    "\n",
  );
  await run("ip", ["netns", "exec", nodeNetns, "iptables-restore", "--noflush", "-w", "5"], { input });
  for (const hook of ["PREROUTING", "OUTPUT"]) {
    const jump = ["-t", "nat", "-C", hook, "-j", SERVICES_CHAIN];
    const present = await run("ip", ["netns", "exec", nodeNetns, "iptables", "-w", "5", ...jump]).then(
      () => true,
      () => false,
    );
    if (!present)
      await run("ip", [
        "netns",
        "exec",
        nodeNetns,
        "iptables",
        "-w",
        "5",
        "-t",
        "nat",
        "-A",
        hook,
        "-j",
        SERVICES_CHAIN,
      ]);
  }
}

function isReady(
  pod: KubeObject & { status?: { conditions?: { type: string; status: string }[] } },
): boolean {
  const ready = pod.status?.conditions?.find((c) => c.type === "Ready");
  return ready === undefined || ready.status === "True";
}

function targetPortOf(
  pod: KubeObject & { spec?: { containers?: { ports?: { name?: string; containerPort: number }[] }[] } },
  sp: ServicePortSpec,
): number | undefined {
  const t = sp.targetPort ?? sp.port;
  if (typeof t === "number") return t;
  if (/^\d+$/.test(t)) return Number(t);
  for (const c of pod.spec?.containers ?? [])
    for (const p of c.ports ?? []) if (p.name === t) return p.containerPort;
  return undefined;
}
