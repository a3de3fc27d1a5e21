// One HTTP/1.1 attempt over the endpoint's keep-alive pool (upstream-agents.ts): the request head,
// the body as it streams, and the first of — the response head (or a 101 for an upgrade), a failure
// (connect, reset), or the attempt's signal (timeouts, the client leaving).

import { request as httpRequest } from "node:http";
import type { Duplex } from "node:stream";
import { type AmbientError, hasCode, WaypointErrorCode } from "@ambient/core";
import { waypointError } from "../errors.js";
import type { UpstreamAgents } from "../upstream-agents.js";
import type { AttemptResult, Sender } from "./attempt.js";

export function http1Sender(agents: UpstreamAgents): Sender {
  return (endpoint, request, body, signal, opts) =>
    new Promise<AttemptResult>((resolve) => {
      // The pooled connection the last try used was dead; its idle siblings likely are too.
      if (opts.fresh) agents.dropIdle(endpoint, endpoint.connections);
      const headers: Record<string, string> = { ...request.headers, host: request.authority };
      if (request.upgrade.length > 0) {
        headers.connection = "upgrade";
        headers.upgrade = request.upgrade.join(", ");
      }
      const agent = agents.agentFor(endpoint, endpoint.connections);
      const r = httpRequest({
        agent,
        method: request.method,
        path: request.path,
        headers,
      });
      let settled = false;
      const settle = (result: AttemptResult) => {
        if (settled) return;
        settled = true;
        signal.removeEventListener("abort", onAbort);
        body.removeListener("failed", onBodyFailed);
        resolve(result);
      };
      const fail = (
        error: AmbientError,
        facts: { reset?: boolean; connectFailure?: boolean },
        stale = false,
      ) => {
        body.detach(r);
        r.destroy(error);
        settle({ ok: false, error, facts, stale });
      };
      const onAbort = () => fail(signal.reason as AmbientError, { reset: true });
      const onBodyFailed = (err: Error) =>
        fail(waypointError(WaypointErrorCode.DOWNSTREAM_CLOSED, err.message), { reset: true });
      const discard = () => {
        body.detach(r);
        r.destroy();
      };
      r.once("response", (res) => {
        agents.noteResponse(agent, res);
        settle({
          ok: true,
          response: { status: res.statusCode ?? 502, headers: res.headers, body: res, discard },
        });
      });
      // Only with this listener does node:http hand the connection over on a 101 (and take it out
      // of the pool) instead of destroying it.
      r.once("upgrade", (res, socket: Duplex, head: Buffer) => {
        settle({
          ok: true,
          response: { status: 101, headers: res.headers, body: res, upgrade: { socket, head }, discard },
        });
      });
      r.on("error", (err) => {
        if (settled) return;
        if (hasCode(err, WaypointErrorCode.UPSTREAM_CONNECT)) {
          settle({ ok: false, error: err as AmbientError, facts: { connectFailure: true }, stale: false });
          return;
        }
        // Nothing was answered: on a reused connection the app most likely closed it just before.
        const error = waypointError(
          WaypointErrorCode.UPSTREAM_RESET,
          `upstream reset before headers: ${err.message}`,
          {
            cause: err,
          },
        );
        settle({ ok: false, error, facts: { reset: true }, stale: r.reusedSocket });
      });
      if (signal.aborted) return onAbort();
      if (body.failure) return onBodyFailed(body.failure);
      signal.addEventListener("abort", onAbort, { once: true });
      body.once("failed", onBodyFailed);
      body.attach(r);
    });
}
