// Runs iptables/ip, in the agent's own netns or inside another one through `nsenter --net=PATH`
// (works for /var/run/netns/NAME bind mounts and /proc/PID/ns/net alike). No shell is involved:
// arguments go to execFile as an array, and rules go to iptables-restore on stdin.

import { execFile } from "node:child_process";
import { debianPackageOf, IptablesError, IptablesErrorCode, NetnsGoneError } from "./errors.js";

/** The binaries we run; override to use e.g. iptables-legacy on a host that still uses it. */
export interface Commands {
  nsenter: string;
  ip: string;
  iptablesSave: string;
  iptablesRestore: string;
  ip6tablesSave: string;
  ip6tablesRestore: string;
}

export const DEFAULT_COMMANDS: Commands = {
  nsenter: "nsenter",
  ip: "ip",
  iptablesSave: "iptables-save",
  iptablesRestore: "iptables-restore",
  ip6tablesSave: "ip6tables-save",
  ip6tablesRestore: "ip6tables-restore",
};

export interface ExecOptions {
  /** Per command. iptables-restore may wait up to RESTORE_LOCK_WAIT_S for the xtables lock. */
  timeoutMs?: number;
  commands?: Partial<Commands>;
}

// Longer than the xtables lock wait we pass to iptables-restore (-w 5), so a busy lock shows up
// as iptables' own "could not get the lock" error rather than our timeout.
export const DEFAULT_TIMEOUT_MS = 15_000;
// iptables-save of a large host nat table (kube-proxy with thousands of services) is megabytes.
const MAX_OUTPUT_BYTES = 64 * 1024 * 1024;

export function commandsOf(opts: ExecOptions | undefined): Commands {
  return { ...DEFAULT_COMMANDS, ...opts?.commands };
}

/**
 * Runs `argv` (in `netns` when given) and resolves with stdout. Rejects with NetnsGoneError when
 * nsenter cannot enter the namespace, and IptablesError otherwise.
 */
export function run(
  netns: string | undefined,
  argv: readonly string[],
  opts: ExecOptions & { input?: string } = {},
): Promise<string> {
  const commands = commandsOf(opts);
  const [file, ...args] = netns === undefined ? argv : [commands.nsenter, `--net=${netns}`, ...argv];
  const command = [file, ...args].join(" ");
  return new Promise((resolve, reject) => {
    const child = execFile(
      file!,
      args,
      {
        encoding: "utf8",
        timeout: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS,
        killSignal: "SIGKILL",
        maxBuffer: MAX_OUTPUT_BYTES,
        env: { ...process.env, LC_ALL: "C" }, // messages we classify are the untranslated ones
      },
      (err, stdout, stderr) => {
        if (!err) {
          resolve(stdout);
          return;
        }
        reject(classify(err, { command, netns, stderr, binary: file!, inner: argv[0]! }));
      },
    );
    // The child may exit before reading stdin (e.g. nsenter failing); that EPIPE is not the error.
    child.stdin?.on("error", () => {});
    child.stdin?.end(opts.input ?? "");
  });
}

interface Context {
  command: string;
  netns: string | undefined;
  stderr: string;
  /** What execFile started (nsenter when entering a netns). */
  binary: string;
  /** What we wanted to run. */
  inner: string;
}

function classify(err: Error & { code?: unknown; killed?: boolean; signal?: unknown }, ctx: Context): Error {
  const exitCode = typeof err.code === "number" ? err.code : null;
  const signal = typeof err.signal === "string" ? err.signal : null;
  const failure = { command: ctx.command, exitCode, signal, stderr: ctx.stderr, netns: ctx.netns };
  if (err.code === "ENOENT") return notFound(ctx.binary, failure, err);
  if (ctx.netns !== undefined) {
    // nsenter's own failures, before it could exec the command.
    if (/nsenter: (cannot open|reassociate to namespace)/.test(ctx.stderr)) {
      return new NetnsGoneError(ctx.netns, ctx.stderr);
    }
    if (exitCode === 127 || /nsenter: failed to execute/.test(ctx.stderr)) {
      return notFound(ctx.inner, failure, err);
    }
  }
  if (err.killed && signal === "SIGKILL") {
    return new IptablesError(
      IptablesErrorCode.TIMEOUT,
      `${ctx.command} timed out${where(ctx.netns)}`,
      failure,
      err,
    );
  }
  const detail = ctx.stderr.trim() || err.message;
  return new IptablesError(
    IptablesErrorCode.FAILED,
    `${ctx.command} failed${where(ctx.netns)} (exit ${exitCode ?? signal}): ${detail}`,
    failure,
    err,
  );
}

function notFound(binary: string, failure: ConstructorParameters<typeof IptablesError>[2], cause: Error) {
  const name = binary.split("/").pop() ?? binary;
  return new IptablesError(
    IptablesErrorCode.NOT_FOUND,
    `${name} not found; install Debian package ${debianPackageOf(binary)}`,
    failure,
    cause,
  );
}

function where(netns: string | undefined): string {
  return netns === undefined ? "" : ` in netns ${netns}`;
}
