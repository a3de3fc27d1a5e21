// Why a JWT was refused, with the message Envoy's jwt_authn puts in the 401/403 body (it comes
// from jwt_verify_lib's status strings), so clients and dashboards see what they would see in Istio.

export type JwtFailure =
  | "JWT_MISSING"
  | "JWT_EXPIRED"
  | "JWT_NOT_YET_VALID"
  | "JWT_BAD_FORMAT"
  | "JWT_HEADER_BAD_BASE64"
  | "JWT_HEADER_BAD_JSON"
  | "JWT_HEADER_BAD_ALG"
  | "JWT_HEADER_UNSUPPORTED_ALG"
  | "JWT_HEADER_BAD_KID"
  | "JWT_PAYLOAD_BAD_BASE64"
  | "JWT_PAYLOAD_BAD_JSON"
  | "JWT_PAYLOAD_BAD_ISS"
  | "JWT_PAYLOAD_BAD_SUB"
  | "JWT_PAYLOAD_BAD_AUD"
  | "JWT_PAYLOAD_BAD_EXP"
  | "JWT_PAYLOAD_BAD_NBF"
  | "JWT_PAYLOAD_BAD_IAT"
  | "JWT_SIGNATURE_BAD_BASE64"
  | "JWT_UNKNOWN_ISSUER"
  | "JWT_AUDIENCE_NOT_ALLOWED"
  | "JWT_VERIFICATION_FAILED"
  | "JWKS_PARSE_ERROR"
  | "JWKS_KID_ALG_MISMATCH"
  | "JWKS_FETCH_FAILED";

const MESSAGES: Record<JwtFailure, string> = {
  JWT_MISSING: "Jwt is missing",
  JWT_EXPIRED: "Jwt is expired",
  JWT_NOT_YET_VALID: "Jwt not yet valid",
  JWT_BAD_FORMAT: "Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections",
  JWT_HEADER_BAD_BASE64: "Jwt header is an invalid Base64url encoded",
  JWT_HEADER_BAD_JSON: "Jwt header is an invalid JSON",
  JWT_HEADER_BAD_ALG: "Jwt header [alg] field is required and must be a string",
  JWT_HEADER_UNSUPPORTED_ALG: "Jwt header [alg] is not supported",
  JWT_HEADER_BAD_KID: "Jwt header [kid] field is not a string",
  JWT_PAYLOAD_BAD_BASE64: "Jwt payload is an invalid Base64url encoded",
  JWT_PAYLOAD_BAD_JSON: "Jwt payload is an invalid JSON",
  JWT_PAYLOAD_BAD_ISS: "Jwt payload [iss] field is not a string",
  JWT_PAYLOAD_BAD_SUB: "Jwt payload [sub] field is not a string",
  JWT_PAYLOAD_BAD_AUD: "Jwt payload [aud] field is not a string or string list",
  JWT_PAYLOAD_BAD_EXP: "Jwt payload [exp] field is not an integer",
  JWT_PAYLOAD_BAD_NBF: "Jwt payload [nbf] field is not an integer",
  JWT_PAYLOAD_BAD_IAT: "Jwt payload [iat] field is not an integer",
  JWT_SIGNATURE_BAD_BASE64: "Jwt signature is an invalid Base64url encoded",
  JWT_UNKNOWN_ISSUER: "Jwt issuer is not configured",
  JWT_AUDIENCE_NOT_ALLOWED: "Audiences in Jwt are not allowed",
  JWT_VERIFICATION_FAILED: "Jwt verification fails",
  JWKS_PARSE_ERROR: "Jwks is an invalid JSON",
  JWKS_KID_ALG_MISMATCH: "Jwks doesn't have key to match kid or alg from Jwt",
  JWKS_FETCH_FAILED: "Jwks remote fetch is failed",
};

export function jwtFailureMessage(failure: JwtFailure): string {
  return MESSAGES[failure];
}

/** Envoy answers 403 for a token whose audience is not allowed and 401 for everything else. */
export function jwtFailureStatus(failure: JwtFailure): 401 | 403 {
  return failure === "JWT_AUDIENCE_NOT_ALLOWED" ? 403 : 401;
}
