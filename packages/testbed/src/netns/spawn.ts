// Long-running programs inside a network namespace: the control plane and agents in node netns,
// ztunnels in node netns, apps in pod netns. `nsenter --net=<path>` execs the program in place
// (no extra process), in its own process group so stop() reaches anything it forked.

import { type ChildProcess, spawn } from "node:child_process";
import { access, mkdir, open, readFile } from "node:fs/promises";
import { basename, dirname } from "node:path";
import { NetnsErrorCode, netnsError } from "./errors.js";

export interface SpawnInNetnsOptions {
  /** stdout and stderr are appended here (the directory is created). */
  logFile: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** How long stop() waits after SIGTERM before SIGKILL. Default 5 s. */
  stopTimeoutMs?: number;
  /**
   * Enter through `ip netns exec`, which also mounts the netns's files from /etc/netns/<name>
   * (its hosts file: cluster DNS for a pod that dials Services by name), as they are at start.
   */
  withNetnsFiles?: boolean;
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface NetnsProcess {
  readonly pid: number;
  readonly netnsPath: string;
  readonly logFile: string;
  readonly child: ChildProcess;
  /** Settles when the process has exited (never rejects). */
  readonly exited: Promise<ExitInfo>;
  readonly running: boolean;
  /** SIGTERM to the process group, SIGKILL after `timeoutMs`; resolves once it is gone. Idempotent. */
  stop(timeoutMs?: number): Promise<ExitInfo>;
  /** Resolves with the first log line matching `pattern`; rejects if the process exits first or on timeout. */
  waitForLog(pattern: RegExp | string, timeoutMs?: number): Promise<string>;
}

const DEFAULT_STOP_TIMEOUT_MS = 5_000;
const DEFAULT_READY_TIMEOUT_MS = 15_000;
/** Log polling: cheap, and far below the time any of our programs takes to start. */
const LOG_POLL_MS = 50;

export async function spawnInNetns(
  netnsPath: string,
  cmd: string,
  args: readonly string[],
  opts: SpawnInNetnsOptions,
): Promise<NetnsProcess> {
  // nsenter would fail too, but only into the log file; a missing netns deserves a direct answer.
  await access(netnsPath).catch((err) => {
    throw netnsError(
      NetnsErrorCode.COMMAND_FAILED,
      `cannot start ${cmd}: network namespace ${netnsPath} does not exist`,
      { netnsPath, command: cmd },
      err,
    );
  });
  await mkdir(dirname(opts.logFile), { recursive: true });
  const log = await open(opts.logFile, "a");
  // waitForLog looks only at what this process writes, not at an earlier run's lines.
  const logStart = (await log.stat()).size;
  let child: ChildProcess;
  try {
    const [enter, enterArgs] = opts.withNetnsFiles
      ? ["ip", ["netns", "exec", basename(netnsPath), cmd, ...args]]
      : ["nsenter", [`--net=${netnsPath}`, "--", cmd, ...args]];
    child = spawn(enter, enterArgs, {
      stdio: ["ignore", log.fd, log.fd],
      env: opts.env ?? process.env,
      ...(opts.cwd && { cwd: opts.cwd }),
      // Own session and process group: stop() signals the group, and a Ctrl-C meant for the
      // parent does not hit the children before the parent can stop them in order.
      detached: true,
    });
  } finally {
    await log.close();
  }
  const pid = child.pid;
  if (pid === undefined) {
    const err = await new Promise<Error>((resolve) => child.once("error", resolve));
    throw netnsError(
      NetnsErrorCode.COMMAND_FAILED,
      `cannot start nsenter for ${cmd}: ${err.message}`,
      { cmd },
      err,
    );
  }
  return new RunningProcess(
    child,
    pid,
    netnsPath,
    opts.logFile,
    logStart,
    opts.stopTimeoutMs ?? DEFAULT_STOP_TIMEOUT_MS,
  );
}

class RunningProcess implements NetnsProcess {
  readonly exited: Promise<ExitInfo>;
  private exit: ExitInfo | undefined;
  private stopping: Promise<ExitInfo> | undefined;

  constructor(
    readonly child: ChildProcess,
    readonly pid: number,
    readonly netnsPath: string,
    readonly logFile: string,
    private readonly logStart: number,
    private readonly stopTimeoutMs: number,
  ) {
    this.exited = new Promise((resolve) => {
      child.once("exit", (code, signal) => {
        this.exit = { code, signal };
        resolve(this.exit);
      });
    });
    child.on("error", () => {}); // surfaced through `exited` and the log
  }

  get running(): boolean {
    return this.exit === undefined;
  }

  stop(timeoutMs = this.stopTimeoutMs): Promise<ExitInfo> {
    this.stopping ??= this.terminate(timeoutMs);
    return this.stopping;
  }

  private async terminate(timeoutMs: number): Promise<ExitInfo> {
    if (this.running) this.signalGroup("SIGTERM");
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), timeoutMs);
    });
    const exit = await Promise.race([this.exited, deadline]);
    clearTimeout(timer);
    // After the leader is gone its group may still hold children; SIGKILL reaches them either way
    // (a process group id is not reused while any member lives).
    this.signalGroup("SIGKILL");
    return exit ?? this.exited;
  }

  private signalGroup(signal: NodeJS.Signals): void {
    try {
      process.kill(-this.pid, signal);
    } catch {
      // ESRCH: nothing left in the group
    }
  }

  async waitForLog(pattern: RegExp | string, timeoutMs = DEFAULT_READY_TIMEOUT_MS): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      // Read after sampling `running`: a line written just before the exit is still seen.
      const wasRunning = this.running;
      const bytes = await readFile(this.logFile).catch(() => Buffer.alloc(0));
      const text = bytes.subarray(this.logStart).toString("utf8");
      const line = text
        .split("\n")
        .find((l) => (typeof pattern === "string" ? l.includes(pattern) : pattern.test(l)));
      if (line !== undefined) return line;
      if (!wasRunning || Date.now() > deadline) {
        const tail = text.split("\n").slice(-20).join("\n");
        const why = this.running
          ? `did not log ${pattern} within ${timeoutMs} ms`
          : `exited (${this.exit?.signal ?? `code ${this.exit?.code}`}) before logging ${pattern}`;
        throw netnsError(
          NetnsErrorCode.PROCESS_NOT_READY,
          `process ${this.pid} in ${this.netnsPath} ${why}; log ${this.logFile}:\n${tail}`,
          { pid: this.pid, netnsPath: this.netnsPath, logFile: this.logFile },
        );
      }
      await new Promise((r) => setTimeout(r, LOG_POLL_MS));
    }
  }
}
