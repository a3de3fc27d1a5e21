// The waypoint's failures are typed with the codes of core's one catalogue, and core's classify gives
// each its status, local reply, response flag and log level. What is left here: the constructor,
// and the flags of answers that are the upstream's own (no error to classify).

import { AmbientError } from "@ambient/core";

export function waypointError(
  code: string,
  message: string,
  opts: { cause?: unknown; details?: Record<string, unknown> } = {},
): AmbientError {
  return new AmbientError(code, message, opts);
}

export const RETRIES_EXHAUSTED_FLAG = "URX";
/** Envoy's flag for an upstream answer kept because the cluster's retry budget was spent. */
export const RETRY_OVERFLOW_FLAG = "UO";
/** No flag: the request went through as asked. */
export const NO_FLAG = "-";
