// The connect phase of both proxies (ztunnel to an app or a passthrough destination, the waypoint
// to an endpoint outside the mesh): a socket that is already connecting either connects within the
// bound or is destroyed, and the failure is a typed error that names the destination.

import type { Socket } from "node:net";
import { AmbientError } from "@ambient/core";

export interface ConnectBound {
  timeoutMs: number;
  /** How the destination is named in errors: "demo/web at 10.0.0.5:8080". */
  what: string;
  /** The caller's code for a failed connect (core classifies it as UF). */
  code: string;
}

/** Resolves with `socket` once connected; rejects (the socket destroyed) on error or after `timeoutMs`. */
export function awaitConnect(socket: Socket, bound: ConnectBound): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.destroy();
      // ETIMEDOUT as the cause, so a SOCKS5 client hears "TTL expired" as from the kernel's own timeout.
      const cause = Object.assign(new Error("connect timed out"), { code: "ETIMEDOUT" });
      reject(
        new AmbientError(bound.code, `connecting to ${bound.what} timed out after ${bound.timeoutMs} ms`, {
          cause,
        }),
      );
    }, bound.timeoutMs);
    const onError = (err: Error) => {
      clearTimeout(timer);
      reject(new AmbientError(bound.code, `cannot connect to ${bound.what}: ${err.message}`, { cause: err }));
    };
    socket.once("error", onError);
    socket.once("connect", () => {
      clearTimeout(timer);
      socket.removeListener("error", onError);
      resolve(socket);
    });
  });
}
