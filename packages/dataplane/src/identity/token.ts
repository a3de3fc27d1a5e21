// The bootstrap token a proxy presents to the control plane (xDS and CA): a projected service
// account token in a cluster, a per-node token file in local mode. Kubernetes rewrites the
// projected file before the token expires, so it is read fresh on every use.

import { readFile } from "node:fs/promises";
import { AmbientError, ErrorCode, errorMessage } from "@ambient/core";

/**
 * The token in `file`, trimmed; undefined when no file is configured. A configured file that is
 * missing, unreadable or empty is AMB_TOKEN_UNREADABLE naming it: the control plane would refuse
 * the call anyway, with a reason that no longer says which file to look at.
 */
export async function readToken(file: string | undefined): Promise<string | undefined> {
  if (!file) return undefined;
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    throw new AmbientError(
      ErrorCode.TOKEN_UNREADABLE,
      `cannot read the token file ${file}: ${errorMessage(err)}`,
      {
        cause: err,
        details: { path: file },
      },
    );
  }
  const token = text.trim();
  if (!token)
    throw new AmbientError(ErrorCode.TOKEN_UNREADABLE, `the token file ${file} is empty`, {
      details: { path: file },
    });
  return token;
}
