// ztunnel's failures are typed with the codes of core's one catalogue and classified by core's one
// table (status, response flag, SOCKS5 reply, log level); this is only the constructor.

import { AmbientError } from "@ambient/core";

export function proxyError(code: string, message: string, cause?: unknown): AmbientError {
  return new AmbientError(code, message, cause === undefined ? {} : { cause });
}
