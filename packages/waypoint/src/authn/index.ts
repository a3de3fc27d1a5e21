// authn: the waypoint's RequestAuthentication (JWT) enforcement. JwtAuthenticator decides a request
// from the RequestAuthentications that target this waypoint; JwksCache keeps key sets across rebuilds.

export { JwtAuthenticator } from "./authenticator.js";
export { JwksCache } from "./jwks.js";
export type { RequestAuthenticationObject } from "./jwt-rule.js";
