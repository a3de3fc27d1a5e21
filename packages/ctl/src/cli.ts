// ambientctl's entry: one function per subcommand; errors print as one clear line and exit 2.

import { type EnvSource, errorMessage, versionText } from "@ambient/core";
import { checkCommand } from "./commands/check.js";
import { upCommand } from "./commands/up.js";
import { waypointCommand } from "./commands/waypoint.js";
import { xdsCommand } from "./commands/xds.js";
import { ztunnelConfigCommand } from "./commands/ztunnel-config.js";

/** Its package.json, from src/ and dist/ alike. */
const PACKAGE_JSON = new URL("../package.json", import.meta.url);

const HELP = `ambientctl: the Ambient mesh command line

  ambientctl up [-f DIR]                         run the local mesh on a manifests folder (default examples/)
  ambientctl up [-f DIR] --demo                  the same, then run the guided demo (examples/ only)
  ambientctl up [-f DIR] --netns                 the mesh on network namespaces with transparent capture (root)
  ambientctl up --kube [--netns] [-f DIR]        a Kubernetes cluster on this machine (test API server, the mesh
                                                 as pods, a kubelet per node); prints export KUBECONFIG=...
  ambientctl xds [workloads|services|policies]   show what the control plane serves [-o json] [--xds-address HOST:PORT]
  ambientctl ztunnel-config [workloads|services|policies|certificates|connections|all] [--node N] [-o json|yaml]
                                                 show what one ztunnel holds (its /config_dump): on a cluster
                                                 the node's ztunnel pod through the API (--kubeconfig, --context;
                                                 else $KUBECONFIG, ~/.kube/config), or --node-ip IP for a local one
  ambientctl waypoint apply|list|status|delete     manage waypoints on a cluster (istioctl's flags; see waypoint --help)
  ambientctl check [--kubeconfig PATH] [--context NAME]
                                                 is the cluster's mesh healthy? each problem with the command
                                                 that fixes it; exit 1 on problems
  ambientctl version                             (or --version) the version, commit and Node.js
`;

export async function run(
  argv: string[],
  env: EnvSource,
  out: (s: string) => void = (s) => process.stdout.write(`${s}\n`),
): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case "up":
        return await upCommand(rest, env, out);
      case "xds":
        return await xdsCommand(rest, env, out);
      case "ztunnel-config":
        return await ztunnelConfigCommand(rest, env, out);
      case "waypoint":
        return await waypointCommand(rest, env, out);
      case "check":
        return await checkCommand(rest, env, out);
      case "version":
      case "--version":
        out(versionText("ambientctl", PACKAGE_JSON, env));
        return 0;
      case undefined:
      case "help":
      case "--help":
      case "-h":
        out(HELP);
        return 0;
      default:
        process.stderr.write(`ambientctl: unknown command "${command}"\n\n${HELP}`);
        return 2;
    }
  } catch (err) {
    process.stderr.write(`ambientctl ${command}: ${errorMessage(err)}\n`);
    return 2;
  }
}
