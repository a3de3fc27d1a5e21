// Errors of the redirection rules. Callers match on `code` (see @ambient/core errors): the agent
// treats a vanished netns on removal as success, and everything else as a failed enrolment.

import { AmbientError, hasCode } from "@ambient/core";

export const IptablesErrorCode = {
  /** iptables, ip or nsenter ran and exited non-zero (or was killed). */
  FAILED: "AMB_IPTABLES_FAILED",
  /** A binary is missing on this machine. */
  NOT_FOUND: "AMB_IPTABLES_NOT_FOUND",
  /** The command did not finish in time (e.g. waiting on the xtables lock). */
  TIMEOUT: "AMB_IPTABLES_TIMEOUT",
  /** The network namespace path does not exist or is not a network namespace any more. */
  NETNS_GONE: "AMB_NETNS_GONE",
  /** An argument that would end up inside the rules is not what it claims (e.g. not an IP). */
  INVALID_ARGUMENT: "AMB_IPTABLES_INVALID_ARGUMENT",
} as const;

/** The Debian package that ships each binary we run, for the "install X" hint. */
const PACKAGE_OF: Record<string, string> = {
  nsenter: "util-linux",
  ip: "iproute2",
};

export function debianPackageOf(binary: string): string {
  const base = binary.split("/").pop() ?? binary;
  return PACKAGE_OF[base] ?? (base.includes("tables") ? "iptables" : base);
}

export interface CommandFailure {
  /** The argv as run, joined with spaces (for logs; never re-parsed). */
  command: string;
  exitCode: number | null;
  signal: string | null;
  stderr: string;
  netns: string | undefined;
}

/** A command we ran failed; carries what a person needs to reproduce it. */
export class IptablesError extends AmbientError {
  readonly command: string;
  readonly exitCode: number | null;
  readonly stderr: string;

  constructor(code: string, message: string, failure: CommandFailure, cause?: unknown) {
    super(code, message, { cause, details: { ...failure } });
    this.name = "IptablesError";
    this.command = failure.command;
    this.exitCode = failure.exitCode;
    this.stderr = failure.stderr;
  }
}

/** The pod's network namespace is gone: applying is impossible, removing is already done. */
export class NetnsGoneError extends AmbientError {
  readonly netns: string;

  constructor(netns: string, stderr: string) {
    super(IptablesErrorCode.NETNS_GONE, `network namespace ${netns} is gone: ${stderr.trim()}`, {
      details: { netns, stderr },
    });
    this.name = "NetnsGoneError";
    this.netns = netns;
  }
}

export function isNetnsGone(err: unknown): boolean {
  return hasCode(err, IptablesErrorCode.NETNS_GONE);
}
