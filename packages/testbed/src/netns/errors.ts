// Failures of the network-namespace harness, typed once. Every shell-level failure names the
// command and what it printed on stderr, so a broken root-only test says what the kernel refused.

import { AmbientError } from "@ambient/core";

export const NetnsErrorCode = {
  /** An external command (ip, nsenter, sysctl...) exited non-zero, timed out or could not start. */
  COMMAND_FAILED: "AMB_NETNS_COMMAND_FAILED",
  /** A CNI plugin answered with an error ({code, msg, details}) or with output we cannot read. */
  CNI_PLUGIN_FAILED: "AMB_NETNS_CNI_PLUGIN_FAILED",
  /** The plugin named by a network config's `type` is in none of the CNI_PATH directories. */
  CNI_PLUGIN_NOT_FOUND: "AMB_NETNS_CNI_PLUGIN_NOT_FOUND",
  /** No usable network configuration in the node's CNI config directory, or one that is malformed. */
  CNI_CONFIG_INVALID: "AMB_NETNS_CNI_CONFIG_INVALID",
  /** CHECK needs the cached ADD result, and there is none for this container. */
  CNI_NO_CACHED_RESULT: "AMB_NETNS_CNI_NO_CACHED_RESULT",
  /** A node, pod or namespace name that cannot become a netns or interface name. */
  NAME_INVALID: "AMB_NETNS_NAME_INVALID",
  /** A process spawned in a netns exited before it said it was ready, or never said so in time. */
  PROCESS_NOT_READY: "AMB_NETNS_PROCESS_NOT_READY",
  /** destroy() could not remove everything; details.failures lists what is left. */
  CLEANUP_FAILED: "AMB_NETNS_CLEANUP_FAILED",
} as const;

export function netnsError(
  code: string,
  message: string,
  details: Record<string, unknown> = {},
  cause?: unknown,
): AmbientError {
  return new AmbientError(code, message, cause === undefined ? { details } : { details, cause });
}
