// The one way this harness runs a program: execFile (never a shell), optional stdin, a deadline,
// and a typed error that carries the full command line, exit status and stderr.

import { execFile } from "node:child_process";
import { NetnsErrorCode, netnsError } from "./errors.js";

export interface RunOptions {
  /** Written to the program's stdin, then stdin is closed. */
  input?: string;
  env?: NodeJS.ProcessEnv;
  /** Kill the program (SIGKILL) after this long. Default 30 s: `ip` answers in milliseconds. */
  timeoutMs?: number;
}

export interface RunResult {
  stdout: string;
  stderr: string;
}

/** Details of a COMMAND_FAILED error; CNI callers read stdout for the plugin's error JSON. */
export interface CommandFailure {
  command: string;
  exitCode: number | undefined;
  signal: string | undefined;
  stdout: string;
  stderr: string;
}

const DEFAULT_TIMEOUT_MS = 30_000;

export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const command = [cmd, ...args].join(" ");
  return new Promise((resolve, reject) => {
    const child = execFile(
      cmd,
      args,
      {
        env: opts.env ?? process.env,
        timeout: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS,
        killSignal: "SIGKILL",
        maxBuffer: 16 * 1024 * 1024,
        encoding: "utf8",
      },
      (err, stdout, stderr) => {
        if (!err) {
          resolve({ stdout, stderr });
          return;
        }
        const e = err as NodeJS.ErrnoException & {
          code?: number | string;
          killed?: boolean;
          signal?: string;
        };
        const failure: CommandFailure = {
          command,
          exitCode: typeof e.code === "number" ? e.code : undefined,
          signal: e.signal ?? undefined,
          stdout,
          stderr,
        };
        const why =
          typeof e.code === "string"
            ? `could not start (${e.code})`
            : e.killed
              ? `timed out after ${opts.timeoutMs ?? DEFAULT_TIMEOUT_MS} ms`
              : e.signal
                ? `killed by ${e.signal}`
                : `exited ${e.code}`;
        const tail = stderr.trim() ? `: ${stderr.trim()}` : "";
        reject(
          netnsError(NetnsErrorCode.COMMAND_FAILED, `\`${command}\` ${why}${tail}`, { ...failure }, err),
        );
      },
    );
    // A program that exits without reading stdin makes the write fail with EPIPE; the exit status
    // is what matters, so that error is not the one to report.
    child.stdin?.on("error", () => {});
    child.stdin?.end(opts.input ?? "");
  });
}

/** The failure recorded on a COMMAND_FAILED error, if `err` is one. */
export function commandFailure(err: unknown): CommandFailure | undefined {
  const e = err as { code?: unknown; details?: unknown };
  if (e?.code !== NetnsErrorCode.COMMAND_FAILED || typeof e.details !== "object") return undefined;
  return e.details as CommandFailure;
}

/** `ip` with its arguments; `ip -n <netns> ...` runs inside a named netns without a new process tree. */
export function ip(...args: string[]): Promise<RunResult> {
  return run("ip", args);
}
