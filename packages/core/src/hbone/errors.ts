// HBONE failures: the codes live in the one catalogue (errors/codes.ts) and are classified in one
// place (errors/classify.ts); HTTP answers carry `details.status` for the classifier to read.

import type { HboneErrorCode } from "../errors/codes.js";
import { AmbientError, type AmbientErrorOptions } from "../errors/errors.js";

export { HboneErrorCode } from "../errors/codes.js";

export type HboneErrorCodeValue = (typeof HboneErrorCode)[keyof typeof HboneErrorCode];

export function hboneError(
  code: HboneErrorCodeValue,
  message: string,
  options: AmbientErrorOptions = {},
): AmbientError {
  return new AmbientError(code, message, options);
}

/** True for our own codes, so a mapper does not wrap an error that is already classified. */
export function isHboneError(err: unknown): err is AmbientError {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" && code.startsWith("AMB_HBONE_");
}
