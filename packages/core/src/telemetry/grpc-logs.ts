// grpc-js writes its own diagnostics to stderr ("E No address added ..."). Route them into our
// JSON log at debug level instead: the errors that matter reach callers as typed errors anyway.

import * as grpc from "@grpc/grpc-js";
import type { Logger } from "pino";

export function routeGrpcLogs(logger: Logger): void {
  const log = logger.child({ component: "grpc" });
  const write = (...args: unknown[]) => log.debug(args.map(String).join(" "));
  grpc.setLogger({ error: write, info: write, debug: write });
}
