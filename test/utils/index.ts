// Builders shared by the cross-package tests: temporary manifest folders, an in-process control
// plane on a loopback port, and `eventually` for asynchronous effects (file watching, pushes).

import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ControlPlane } from "@ambient/controlplane";
import { createMemoryLogger, type Logger } from "@ambient/core";

export { eventually } from "@ambient/core/testing";

export interface TempDir {
  path: string;
  write(file: string, text: string): Promise<void>;
  remove(file: string): Promise<void>;
  cleanup(): Promise<void>;
}

export async function tempDir(prefix = "ambient-test-"): Promise<TempDir> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return {
    path,
    write: (file, text) => writeFile(join(path, file), text),
    remove: (file) => rm(join(path, file), { force: true }),
    cleanup: () => rm(path, { recursive: true, force: true }),
  };
}

export interface RunningControlPlane {
  cp: ControlPlane;
  config: TempDir;
  state: TempDir;
  logger: Logger;
  logs: Record<string, unknown>[];
  stop(): Promise<void>;
}

/** A control plane on 127.0.0.1:<free port> serving `files` (name → YAML text). */
export async function startControlPlane(
  files: Record<string, string>,
  opts: { watch?: boolean; prefaceTimeoutMs?: number } = {},
): Promise<RunningControlPlane> {
  const config = await tempDir("ambient-config-");
  const state = await tempDir("ambient-state-");
  for (const [name, text] of Object.entries(files)) await config.write(name, text);
  const { logger, records } = createMemoryLogger("debug");
  const cp = await ControlPlane.start({
    configDir: config.path,
    listen: { host: "127.0.0.1", port: 0 },
    stateDir: state.path,
    trustDomain: "cluster.local",
    clusterId: "Kubernetes",
    rootNamespace: "istio-system",
    logger,
    watch: opts.watch ?? true,
    ...(opts.prefaceTimeoutMs !== undefined ? { prefaceTimeoutMs: opts.prefaceTimeoutMs } : {}),
  });
  return {
    cp,
    config,
    state,
    logger,
    logs: records,
    stop: async () => {
      await cp.stop();
      await config.cleanup();
      await state.cleanup();
    },
  };
}

// ---- manifest builders ----

export function namespace(name: string, labels: Record<string, string> = {}): string {
  return `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${name}\n  labels: ${JSON.stringify(labels)}\n`;
}

export function node(name: string, ip: string): string {
  return `apiVersion: v1\nkind: Node\nmetadata:\n  name: ${name}\nstatus:\n  addresses:\n    - { type: InternalIP, address: ${ip} }\n`;
}

export function pod(p: {
  name: string;
  namespace: string;
  node: string;
  ip: string;
  sa?: string;
  labels?: Record<string, string>;
  ports?: { name?: string; containerPort: number }[];
}): string {
  return [
    "apiVersion: v1",
    "kind: Pod",
    "metadata:",
    `  name: ${p.name}`,
    `  namespace: ${p.namespace}`,
    `  labels: ${JSON.stringify(p.labels ?? {})}`,
    "spec:",
    `  nodeName: ${p.node}`,
    `  serviceAccountName: ${p.sa ?? "default"}`,
    "  containers:",
    "    - name: app",
    "      image: app",
    `      ports: ${JSON.stringify(p.ports ?? [])}`,
    "status:",
    "  phase: Running",
    `  podIP: ${p.ip}`,
    "",
  ].join("\n");
}

export function service(s: {
  name: string;
  namespace: string;
  vip: string;
  selector: Record<string, string>;
  ports: { port: number; targetPort?: number | string; name?: string }[];
}): string {
  return [
    "apiVersion: v1",
    "kind: Service",
    "metadata:",
    `  name: ${s.name}`,
    `  namespace: ${s.namespace}`,
    "spec:",
    `  clusterIP: ${s.vip}`,
    `  selector: ${JSON.stringify(s.selector)}`,
    `  ports: ${JSON.stringify(s.ports)}`,
    "",
  ].join("\n");
}

export function docs(...parts: string[]): string {
  return parts.join("---\n");
}
