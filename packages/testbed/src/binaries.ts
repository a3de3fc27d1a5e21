// Where another package's executable lives, found through package resolution (its package.json
// `bin`), so the harness works from a source checkout, from dist and from an installed package alike,
// never from a path relative to this file.

import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

const require = createRequire(import.meta.url);

/** The file behind `bin` entry `name` of package `pkg` (e.g. "@ambient/ztunnel", "ztunnel"). */
export function binaryPath(pkg: string, name: string): string {
  const manifestPath = require.resolve(`${pkg}/package.json`);
  const manifest = require(manifestPath) as { bin?: string | Record<string, string> };
  const bin = typeof manifest.bin === "string" ? manifest.bin : manifest.bin?.[name];
  if (!bin) throw new Error(`${pkg} has no executable named ${name} (see its package.json "bin")`);
  return join(dirname(manifestPath), bin);
}

/**
 * What to pass this process's `node` to run executable `file` as its users do: the runtime flags its
 * shebang names (`#!/usr/bin/env -S node --max-semi-space-size=4`: ztunnel's young generation),
 * then the file. Spawning `node file` alone would drop them and run a proxy unlike the shipped one.
 */
export function nodeArgv(file: string): string[] {
  const shebang = readFileSync(file, "utf8").split("\n", 1)[0] ?? "";
  const flags = /^#!\S*env\s+-S\s+node\s+(.*)$/.exec(shebang)?.[1] ?? "";
  return [...flags.split(/\s+/).filter(Boolean), file];
}
