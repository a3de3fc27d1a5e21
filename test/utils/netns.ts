// What the root-only tests in network namespaces share: whether they can run here, and waiting for
// a mesh that settles in the background (pods, listeners and xDS come up in their own time).

import { execFileSync } from "node:child_process";

export const isRoot = process.getuid?.() === 0;

/** Whether `cmd` runs here (a Debian package a test needs: dig, curl). */
export function hasCommand(cmd: string, args: string[] = ["--version"]): boolean {
  try {
    execFileSync(cmd, args, { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/**
 * Polls `probe` until it gives a value: undefined, "" and a thrown error mean "not yet". Past `ms`
 * it fails naming what it waited for and the last answer.
 */
export async function until<T>(what: string, probe: () => Promise<T | undefined>, ms = 60_000): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    last = await probe().catch((err) => err);
    if (last !== undefined && !(last instanceof Error) && last !== "") return last as T;
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}; last: ${String(last)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
