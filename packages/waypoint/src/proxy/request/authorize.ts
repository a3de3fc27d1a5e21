// Stage 3, authorize: the AuthorizationPolicies that target this waypoint or the destination
// service, with the request principal from authentication. Every request passes here, whatever its
// protocol or headers (an Upgrade request included): a denial is 403 "RBAC: access denied".

import { WaypointErrorCode } from "@ambient/core";
import type { L7Request } from "../../model/request.js";
import { waypointError } from "../errors.js";
import type { AuthnResult, Stages } from "../stages.js";

export function authorize(stages: Stages, l7: L7Request, auth: AuthnResult): void {
  const decision = stages.authorize(l7, auth);
  if (!decision.allowed) {
    throw waypointError(WaypointErrorCode.DENIED, `denied: ${decision.reason}`, {
      details: { ...(decision.policy ? { policy: decision.policy } : {}) },
    });
  }
}
