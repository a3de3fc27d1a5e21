// `ambientctl waypoint apply|list|status|delete`: istioctl's waypoint commands, flags and messages,
// against the cluster the kubeconfig names (as kubectl finds it: --kubeconfig, $KUBECONFIG,
// ~/.kube/config; --context; the context's namespace unless -n). The control plane's waypoint
// controller turns the Gateway these write into a Deployment and a Service.

import { type EnvSource, type OptionSpec, parseOptions } from "@ambient/core";
import { type KubeConfig, loadUserKubeConfig } from "@ambient/kube/api";
import { waypointApply } from "./waypoint-apply.js";
import { waypointDelete } from "./waypoint-delete.js";
import { waypointList, waypointStatus } from "./waypoint-show.js";

export const WAYPOINT_HELP = `ambientctl waypoint: manage waypoints (Gateways of class istio-waypoint)

  ambientctl waypoint apply [-n NS] [--name waypoint] [--for service|workload|all|none]
                            [--enroll-namespace] [--overwrite] [-r REVISION] [-w|--wait] [--waypoint-timeout 90s]
  ambientctl waypoint list [-n NS | -A]
  ambientctl waypoint status [-n NS] [-w|--wait] [--waypoint-timeout 90s]
  ambientctl waypoint delete [-n NS] NAME... | --all

  every subcommand: --kubeconfig PATH (else $KUBECONFIG, ~/.kube/config), --context NAME, -n/--namespace NS`;

const COMMON: readonly OptionSpec[] = [
  { flag: "kubeconfig", kind: "string", description: "kubeconfig file (else $KUBECONFIG, ~/.kube/config)" },
  { flag: "context", kind: "string", description: "kubeconfig context to use" },
  { flag: "namespace", kind: "string", description: "namespace (else the context's, else default)" },
  { flag: "name", kind: "string", default: "waypoint", description: "name of the waypoint" },
];
// istioctl's: how long --wait waits for Programmed.
const WAIT: readonly OptionSpec[] = [
  { flag: "wait", kind: "bool", default: "false", description: "wait for the waypoint to be ready" },
  { flag: "waypoint-timeout", kind: "duration", default: "90s", description: "how long --wait waits" },
];
const OPTIONS: Record<string, readonly OptionSpec[]> = {
  apply: [
    ...COMMON,
    ...WAIT,
    { flag: "for", kind: "string", description: "traffic type: all, none, service or workload" },
    {
      flag: "enroll-namespace",
      kind: "bool",
      default: "false",
      description: "label the namespace with the waypoint",
    },
    { flag: "overwrite", kind: "bool", default: "false", description: "replace the namespace's waypoint" },
    { flag: "revision", kind: "string", description: "label the waypoint istio.io/rev=REVISION" },
  ],
  list: [
    ...COMMON,
    { flag: "all-namespaces", kind: "bool", default: "false", description: "every namespace" },
  ],
  status: [...COMMON, ...WAIT],
  delete: [...COMMON, { flag: "all", kind: "bool", default: "false", description: "every waypoint" }],
};
const SHORT: Record<string, string> = { n: "namespace", A: "all-namespaces", w: "wait", r: "revision" };

/** What every subcommand gets: the parsed flags, positionals, the cluster and where to print. */
export interface WaypointContext {
  values: Record<string, unknown>;
  positionals: string[];
  kc: KubeConfig;
  /** -n, else the context's namespace, else default. */
  namespace: string;
  /** Whether -n was given (istioctl's status adds a NAMESPACE column without it). */
  namespaceGiven: boolean;
  name: string;
  out: (s: string) => void;
}

export async function waypointCommand(
  argv: string[],
  env: EnvSource,
  out: (s: string) => void,
): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === "help" || sub === "--help" || sub === "-h") {
    out(WAYPOINT_HELP);
    return 0;
  }
  const specs = OPTIONS[sub];
  if (!specs) throw new Error(`unknown subcommand "${sub}": use apply, list, status or delete`);
  const { values, positionals } = parseOptions(specs, normalize(rest, specs), env);
  if (sub !== "delete" && positionals.length > 0)
    throw new Error(`unexpected argument "${positionals[0]}" (waypoint ${sub} takes flags only)`);
  const { kc, namespace } = loadUserKubeConfig({
    kubeconfig: values["kubeconfig"] as string | undefined,
    context: values["context"] as string | undefined,
    env,
  });
  const name = (values["name"] as string) || "waypoint";
  if (name === "none") throw new Error("invalid name provided for waypoint, 'none' is a reserved value");
  const ctx: WaypointContext = {
    values,
    positionals,
    kc,
    namespace: (values["namespace"] as string | undefined) || namespace,
    namespaceGiven: Boolean(values["namespace"]),
    name,
    out,
  };
  switch (sub) {
    case "apply":
      return waypointApply(ctx);
    case "list":
      return waypointList(ctx);
    case "status":
      return waypointStatus(ctx);
    default:
      return waypointDelete(ctx);
  }
}

/**
 * kubectl's habits on top of our long flags: `-n ns`, `-A`, `-w`, `-r rev`; a bare boolean flag
 * never takes the next word as its value (cobra's rule), so `delete --all` never eats a name.
 */
function normalize(argv: string[], specs: readonly OptionSpec[]): string[] {
  const bools = new Set(specs.filter((s) => s.kind === "bool").map((s) => s.flag));
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const short = /^-([A-Za-z])(.*)$/.exec(a);
    if (short && SHORT[short[1]!]) {
      const flag = SHORT[short[1]!]!;
      if (bools.has(flag)) out.push(`--${flag}=true`);
      else if (short[2]) out.push(`--${flag}=${short[2].replace(/^=/, "")}`);
      else if (argv[i + 1] === undefined) out.push(`--${flag}`);
      else out.push(`--${flag}`, argv[++i]!);
    } else if (a.startsWith("--") && !a.includes("=") && bools.has(a.slice(2))) {
      out.push(`${a}=true`);
    } else {
      out.push(a);
    }
  }
  return out;
}
