// Traffic mirroring: once the request body is complete (and was small enough to keep), a copy goes
// to each mirror destination, fire-and-forget, with Envoy's "-shadow" suffix on the Host; the
// answers are dropped. A body too large to keep is not mirrored, as Envoy does past its buffer.

import { Readable } from "node:stream";
import type { L7Request } from "../../model/request.js";
import type { Stages } from "../stages.js";
import type { AttemptRequest, Sender } from "./attempt.js";
import { ReplayBody } from "./body.js";
import type { ForwardPlan } from "./route.js";

/** A mirror copy that gets no answer in this long is abandoned (it never holds up the client). */
export const MIRROR_TIMEOUT_MS = 10_000;

export function mirror(
  stages: Stages,
  send: Sender,
  l7: L7Request,
  plan: ForwardPlan,
  request: AttemptRequest,
  body: ReplayBody,
): void {
  const mirrors = plan.mirrors ?? [];
  if (mirrors.length === 0) return;
  const go = () => {
    const whole = body.whole;
    if (!whole) return;
    for (const m of mirrors) {
      const picked = stages.pick(l7, {
        host: m.host,
        ...(m.subset ? { subset: m.subset } : {}),
        port: m.port ?? l7.port,
      });
      if (!picked.ok) continue;
      const { endpoint } = picked;
      const copy = new ReplayBody(Readable.from(whole.length > 0 ? [whole] : []));
      const shadow = { ...request, authority: `${request.authority}-shadow`, upgrade: [] };
      void send(endpoint, shadow, copy, AbortSignal.timeout(MIRROR_TIMEOUT_MS), {}).then((result) => {
        if (!result.ok) {
          endpoint.done(result.facts.connectFailure ? { connectFailure: true } : { reset: true });
          return;
        }
        endpoint.done({ status: result.response.status });
        result.response.body.on("error", () => {});
        result.response.body.resume();
      });
    }
  };
  if (body.complete) go();
  else body.once("complete", go);
}
