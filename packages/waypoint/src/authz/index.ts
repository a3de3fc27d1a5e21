// authz: the waypoint's L7 AuthorizationPolicy enforcement. compileAuthorization() turns the policies
// that target this waypoint into an Authorizer; normalizePath() is the path form it (and routing) see.

export {
  type Authorizer,
  compileAuthorization,
} from "./authorizer.js";
export type { AuthorizationPolicyObject } from "./policy.js";
