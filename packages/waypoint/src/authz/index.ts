// authz: the waypoint's L7 AuthorizationPolicy enforcement. compileAuthorization() turns the policies
// that target this waypoint into an Authorizer; normalizePath() is the path form it (and routing) see.

export {
  type Authorizer,
  type AuthorizerOptions,
  type AuthzDecision,
  compileAuthorization,
  RBAC_ACCESS_DENIED,
} from "./authorizer.js";
export {
  compilePathTemplate,
  isPathTemplate,
  normalizePath,
  type PathNormalization,
  splitPathAndQuery,
} from "./path.js";
export {
  type AuthorizationAction,
  type AuthorizationPolicyObject,
  type AuthorizationPolicySpec,
  type AuthzCondition,
  type AuthzOperation,
  type AuthzRule,
  type AuthzSource,
  DRY_RUN_ANNOTATION,
  rbacPolicyName,
} from "./policy.js";
export { originalClientIp, type RequestAuth } from "./request-facts.js";
