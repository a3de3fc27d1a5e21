// One function per binary turns flags + an injected environment into a typed Config. Tests pass
// their own env object instead of mutating process.env. Every invalid field is reported at once.

import { AmbientError, ErrorCode } from "../errors/errors.js";

export type EnvSource = Readonly<Record<string, string | undefined>>;

export type OptionKind = "string" | "int" | "bool" | "duration" | "hostport";

export interface OptionSpec {
  /** Long flag name without dashes, e.g. "config-dir". */
  flag: string;
  /** Environment variable consulted when the flag is absent (Istio's name where one exists). */
  env?: string;
  kind: OptionKind;
  default?: string;
  required?: boolean;
  description: string;
}

export interface HostPort {
  host: string;
  port: number;
}

export type OptionValue = string | number | boolean | HostPort | undefined;

export interface ParsedOptions {
  values: Record<string, OptionValue>;
  positionals: string[];
}

/** Parses `--flag value`, `--flag=value` and bare `--bool-flag`; env fills what flags leave unset. */
export function parseOptions(
  specs: readonly OptionSpec[],
  argv: readonly string[],
  env: EnvSource,
): ParsedOptions {
  const byFlag = new Map(specs.map((s) => [s.flag, s]));
  const raw = new Map<string, string>();
  const problems: string[] = [];
  const positionals: string[] = [];

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith("--")) {
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
    const spec = byFlag.get(name);
    if (!spec) {
      problems.push(`unknown flag --${name}`);
      continue;
    }
    if (eq !== -1) raw.set(name, arg.slice(eq + 1));
    else if (spec.kind === "bool" && (argv[i + 1] === undefined || argv[i + 1]!.startsWith("--")))
      raw.set(name, "true");
    else if (argv[i + 1] === undefined) problems.push(`flag --${name} needs a value`);
    else raw.set(name, argv[++i]!);
  }

  const values: Record<string, OptionValue> = {};
  for (const spec of specs) {
    let text = raw.get(spec.flag);
    let source = `--${spec.flag}`;
    if (text === undefined && spec.env && env[spec.env] !== undefined && env[spec.env] !== "") {
      text = env[spec.env];
      source = `$${spec.env}`;
    }
    if (text === undefined) text = spec.default;
    if (text === undefined) {
      if (spec.required) problems.push(`--${spec.flag}${spec.env ? ` (or $${spec.env})` : ""} is required`);
      values[spec.flag] = undefined;
      continue;
    }
    const parsed = convert(spec.kind, text);
    if (parsed instanceof Error) problems.push(`${source}: ${parsed.message}`);
    else values[spec.flag] = parsed;
  }

  if (problems.length > 0) {
    throw new AmbientError(
      ErrorCode.CONFIG_INVALID,
      `invalid configuration:\n  - ${problems.join("\n  - ")}`,
      {
        details: { problems },
      },
    );
  }
  return { values, positionals };
}

function convert(kind: OptionKind, text: string): OptionValue | Error {
  switch (kind) {
    case "string":
      return text;
    case "int": {
      if (!/^-?\d+$/.test(text)) return new Error(`"${text}" is not an integer`);
      return Number.parseInt(text, 10);
    }
    case "bool": {
      if (/^(true|1|yes|on)$/i.test(text)) return true;
      if (/^(false|0|no|off)$/i.test(text)) return false;
      return new Error(`"${text}" is not a boolean`);
    }
    case "duration": {
      const ms = parseDuration(text);
      return ms === undefined ? new Error(`"${text}" is not a duration (e.g. 500ms, 25s, 5m, 24h)`) : ms;
    }
    case "hostport": {
      const hp = parseHostPort(text);
      return hp ?? new Error(`"${text}" is not HOST:PORT`);
    }
  }
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Go-style durations as Istio writes them: "1.5s", "25s", "5m", "24h", "1h30m". Returns ms. */
export function parseDuration(text: string): number | undefined {
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/gy;
  let total = 0;
  let matched = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    total += Number.parseFloat(m[1]!) * UNIT_MS[m[2]!]!;
    matched = re.lastIndex;
  }
  if (matched === 0 || matched !== text.length) return undefined;
  return total;
}

export function parseHostPort(text: string): HostPort | undefined {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(text);
  if (!m) return undefined;
  const port = Number.parseInt(m[3]!, 10);
  if (port > 65535) return undefined;
  return { host: m[1] ?? (m[2] || "0.0.0.0"), port };
}

export function formatHostPort(hp: HostPort): string {
  return hp.host.includes(":") ? `[${hp.host}]:${hp.port}` : `${hp.host}:${hp.port}`;
}

export function usage(binary: string, specs: readonly OptionSpec[]): string {
  const lines = specs.map((s) => {
    const env = s.env ? ` [$${s.env}]` : "";
    const def = s.default !== undefined ? ` (default ${s.default})` : "";
    return `  --${s.flag.padEnd(22)} ${s.description}${def}${env}`;
  });
  lines.push(`  ${"--help".padEnd(24)} print this help and exit`);
  lines.push(`  ${"--version".padEnd(24)} print the version (package, commit, Node.js) and exit`);
  return `usage: ${binary} [flags]\n${lines.join("\n")}`;
}
