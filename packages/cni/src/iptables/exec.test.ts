import { hasCode } from "@ambient/core";
import { describe, expect, it } from "vitest";
import { IptablesErrorCode } from "./errors.js";
import { run } from "./exec.js";

describe("command errors", () => {
  it("a missing binary says which Debian package to install", async () => {
    const err = await run(undefined, ["iptables-definitely-missing", "-L"]).catch((e: unknown) => e);
    expect(hasCode(err, IptablesErrorCode.NOT_FOUND)).toBe(true);
    expect((err as Error).message).toBe(
      "iptables-definitely-missing not found; install Debian package iptables",
    );
  });

  it("a failing command carries the command, exit code and stderr", async () => {
    const err = (await run(undefined, [
      process.execPath,
      "-e",
      "process.stderr.write('nope'); process.exit(3)",
    ]).catch((e: unknown) => e)) as { code: string; exitCode: number; stderr: string; command: string };
    expect(err.code).toBe(IptablesErrorCode.FAILED);
    expect(err.exitCode).toBe(3);
    expect(err.stderr).toBe("nope");
    expect(err.command).toContain(process.execPath);
  });

  it("a command that hangs is killed at the timeout", async () => {
    const err = await run(undefined, [process.execPath, "-e", "setTimeout(() => {}, 10000)"], {
      timeoutMs: 200,
    }).catch((e: unknown) => e);
    expect(hasCode(err, IptablesErrorCode.TIMEOUT)).toBe(true);
  });
});
