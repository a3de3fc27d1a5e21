// How the harness runs a pod's app: the command line of echo-main.js (the echo server as its own
// process, so it can live in the pod's netns), its arguments, and the line it prints when ready.

import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

export const ECHO_READY_MESSAGE = "echo server listening";

export interface EchoAppArgs {
  pod: string;
  namespace: string;
  serviceAccount: string;
  node: string;
  ports: number[];
  /** Default 0.0.0.0: the pod's eth0 for callers, and 127.0.0.1 for in-pod delivery. */
  host?: string;
}

/**
 * The built entry point. Resolved from the package root so it is the same file whether this
 * module runs from dist/ or, under vitest, from src/ (where no .js sits next to it): build first.
 */
export function echoMainPath(): string {
  return fileURLToPath(new URL("../../dist/netns/echo-main.js", import.meta.url));
}

/** `node <echo-main.js> --pod ... --ports ...`, ready for spawnInNetns. */
export function echoCommand(app: EchoAppArgs): { cmd: string; args: string[] } {
  return {
    cmd: process.execPath,
    args: [
      echoMainPath(),
      "--pod",
      app.pod,
      "--namespace",
      app.namespace,
      "--service-account",
      app.serviceAccount,
      "--node",
      app.node,
      "--ports",
      app.ports.join(","),
      "--host",
      app.host ?? "0.0.0.0",
    ],
  };
}

export function parseEchoArgs(argv: readonly string[]): Required<EchoAppArgs> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      pod: { type: "string" },
      namespace: { type: "string", default: "default" },
      "service-account": { type: "string", default: "default" },
      node: { type: "string", default: "" },
      ports: { type: "string" },
      host: { type: "string", default: "0.0.0.0" },
    },
    strict: true,
  });
  const problems: string[] = [];
  if (!values.pod) problems.push("--pod is required");
  const ports = (values.ports ?? "")
    .split(",")
    .filter((p) => p.trim() !== "")
    .map((p) => Number(p));
  if (ports.length === 0) problems.push("--ports needs at least one port");
  for (const p of ports) if (!Number.isInteger(p) || p < 1 || p > 65535) problems.push(`bad port ${p}`);
  if (problems.length > 0) throw new Error(problems.join("; "));
  return {
    pod: values.pod as string,
    namespace: values.namespace as string,
    serviceAccount: values["service-account"] as string,
    node: values.node as string,
    ports,
    host: values.host as string,
  };
}
