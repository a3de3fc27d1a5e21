// `--version` for every binary: the package's version (its package.json), the commit it was built
// from and the Node.js running it. Images pass the commit as a build argument that becomes
// AMBIENT_BUILD_COMMIT (deploy/images/Dockerfile); the runtime is printed because an image ships
// its own Node.js, whose version is part of what was released.

import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { AmbientError, ErrorCode } from "../errors/errors.js";
import type { EnvSource } from "./config.js";

export const BUILD_COMMIT_ENV = "AMBIENT_BUILD_COMMIT";

/**
 * `ztunnel 0.1.0 (commit 2717697, Node.js v24.22.3, linux-x64)`. `packageJson` is the binary's own
 * package.json (`new URL("../package.json", import.meta.url)` from src/ and dist/ alike).
 */
export function versionText(binary: string, packageJson: URL, env: EnvSource): string {
  const path = fileURLToPath(packageJson);
  let version: unknown;
  try {
    version = (JSON.parse(readFileSync(path, "utf8")) as { version?: unknown }).version;
  } catch (err) {
    throw new AmbientError(ErrorCode.INSTALL_BROKEN, `${binary}: cannot read its version from ${path}`, {
      cause: err,
    });
  }
  if (typeof version !== "string" || version === "")
    throw new AmbientError(ErrorCode.INSTALL_BROKEN, `${binary}: ${path} has no "version"`);
  const commit = env[BUILD_COMMIT_ENV] || "unknown";
  return `${binary} ${version} (commit ${commit}, Node.js ${process.version}, ${process.platform}-${process.arch})`;
}
