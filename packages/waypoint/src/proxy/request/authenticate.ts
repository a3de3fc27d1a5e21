// Stage 2, authenticate: RequestAuthentication's JWT rules. A token that fails verification ends
// the request (401); a request without one goes on with no request principal, as in Istio.
// Verified claims and header edits (the token removed unless forwardOriginalToken) apply here.

import { WaypointErrorCode } from "@ambient/core";
import type { L7Request } from "../../model/request.js";
import { waypointError } from "../errors.js";
import type { AuthnResult, Stages } from "../stages.js";

export async function authenticate(stages: Stages, l7: L7Request): Promise<AuthnResult> {
  const auth = await stages.authenticate(l7);
  if (!auth.ok) {
    throw waypointError(WaypointErrorCode.UNAUTHENTICATED, auth.reason ?? "Jwt verification fails", {
      details: { status: auth.status ?? 401, reason: auth.reason ?? "Jwt verification fails" },
    });
  }
  for (const h of auth.removeHeaders ?? []) delete l7.headers[h];
  Object.assign(l7.headers, auth.addHeaders ?? {});
  return auth;
}
