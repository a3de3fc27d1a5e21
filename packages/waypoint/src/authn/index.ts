// authn: the waypoint's RequestAuthentication (JWT) enforcement. JwtAuthenticator decides a request
// from the RequestAuthentications that target this waypoint; JwksCache keeps key sets across rebuilds.

export {
  type AuthnFailure,
  type AuthnResult,
  type AuthnSuccess,
  JwtAuthenticator,
  type JwtAuthenticatorOptions,
} from "./authenticator.js";
export {
  DEFAULT_CACHE_DURATION_MS,
  DEFAULT_FAILED_FETCH_RETRY_MS,
  DEFAULT_UNKNOWN_KID_REFETCH_MS,
  isJwksFetchError,
  JwksCache,
  type JwksCacheOptions,
  JwksFetchError,
} from "./jwks.js";
export {
  type ClaimToHeader,
  type JwtHeaderLocation,
  type JwtRule,
  type RequestAuthenticationObject,
  sanitizeAudience,
} from "./jwt-rule.js";
export { type JwtFailure, jwtFailureMessage, jwtFailureStatus } from "./status.js";
export { DEFAULT_CLOCK_SKEW_SECONDS } from "./verify-token.js";
