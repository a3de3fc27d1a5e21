// Failures of installing ambient-cni on a node, typed once (match on `code`).

import { AmbientError } from "@ambient/core";

export const CniInstallErrorCode = {
  /** The CNI config directory is missing or holds no *.conflist / *.conf / *.json yet (primary CNI not installed). */
  NO_CONFIG: "AMB_CNI_NO_CONFIG",
  /** The network config the runtime would use is not JSON or not a network config; details.file names it. */
  CONFIG_MALFORMED: "AMB_CNI_CONFIG_MALFORMED",
  /** The compiled plugin (dist/plugin/main.js) is not there to copy: build the package first. */
  PLUGIN_NOT_BUILT: "AMB_CNI_PLUGIN_NOT_BUILT",
  /** The Node.js binary to copy next to the plugin (`--copy-node`) cannot be read or written. */
  NODE_NOT_COPIED: "AMB_CNI_NODE_NOT_COPIED",
} as const;

export function installError(
  code: string,
  message: string,
  details: Record<string, unknown>,
  cause?: unknown,
): AmbientError {
  return new AmbientError(code, message, cause === undefined ? { details } : { details, cause });
}
