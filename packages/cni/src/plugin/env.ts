// The CNI_* environment a runtime sets for one invocation, checked as the spec asks: which
// variables each command requires, container id and interface name syntax, and CNI_ARGS
// ("K8S_POD_NAMESPACE=a;K8S_POD_NAME=b;IgnoreUnknown=1"). Every problem is a code-4 error.

import { CniCode, CniError } from "./spec.js";

export const COMMANDS = ["ADD", "DEL", "CHECK", "VERSION", "STATUS", "GC"] as const;
export type CniCommand = (typeof COMMANDS)[number];

export interface CniEnv {
  command: CniCommand;
  containerId: string;
  /** Empty on a DEL whose netns is already gone (the spec makes it optional there). */
  netns: string;
  ifName: string;
  /** CNI_ARGS as a map; later duplicates win, as in libcni's LoadArgs. */
  args: ReadonlyMap<string, string>;
}

/** The spec's required variables per command; CNI_PATH is optional everywhere (we exec nothing). */
const REQUIRED: Record<CniCommand, readonly string[]> = {
  ADD: ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"],
  CHECK: ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"],
  DEL: ["CNI_CONTAINERID", "CNI_IFNAME"],
  VERSION: [],
  STATUS: [],
  GC: [],
};

// The spec's syntax for both: a container id starts alphanumeric; an interface name is a Linux one.
const CONTAINER_ID_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
const IFNAME_MAX = 15;

export function parseCniEnv(env: Readonly<Record<string, string | undefined>>): CniEnv {
  const raw = env.CNI_COMMAND ?? "";
  if (!raw) throw new CniError(CniCode.INVALID_ENV, "required env variables [CNI_COMMAND] missing");
  const command = raw.toUpperCase() as CniCommand;
  if (!COMMANDS.includes(command)) {
    throw new CniError(
      CniCode.INVALID_ENV,
      `unknown CNI_COMMAND: ${raw}`,
      `expected one of ${COMMANDS.join(", ")}`,
    );
  }
  const missing = REQUIRED[command].filter((name) => !env[name]);
  if (missing.length > 0) {
    throw new CniError(CniCode.INVALID_ENV, `required env variables [${missing.join(",")}] missing`);
  }
  const containerId = env.CNI_CONTAINERID ?? "";
  const ifName = env.CNI_IFNAME ?? "";
  if (REQUIRED[command].includes("CNI_CONTAINERID") && !CONTAINER_ID_RE.test(containerId)) {
    throw new CniError(CniCode.INVALID_ENV, "invalid characters in CNI_CONTAINERID", containerId);
  }
  if (REQUIRED[command].includes("CNI_IFNAME")) checkIfName(ifName);
  return { command, containerId, netns: env.CNI_NETNS ?? "", ifName, args: parseCniArgs(env.CNI_ARGS ?? "") };
}

function checkIfName(name: string): void {
  const bad =
    name.length > IFNAME_MAX
      ? `longer than ${IFNAME_MAX} characters`
      : name === "." || name === ".."
        ? "reserved"
        : /[/:\s]/.test(name)
          ? "contains / or : or whitespace"
          : undefined;
  if (bad) throw new CniError(CniCode.INVALID_ENV, `invalid CNI_IFNAME: ${bad}`, name);
}

export function parseCniArgs(text: string): Map<string, string> {
  const args = new Map<string, string>();
  for (const pair of text.split(";")) {
    if (!pair) continue;
    const eq = pair.indexOf("=");
    if (eq <= 0) throw new CniError(CniCode.INVALID_ENV, `CNI_ARGS: invalid pair "${pair}"`, text);
    args.set(pair.slice(0, eq), pair.slice(eq + 1));
  }
  return args;
}
