// Where a component finds its API server: an explicit kubeconfig file (`--kubeconfig`, KUBECONFIG),
// or, in a pod, the service account's token and CA that Kubernetes mounts. A command line
// (ambientctl) finds it as kubectl does, with its --context.

import { existsSync } from "node:fs";
import { delimiter, join } from "node:path";
import { KubeConfig } from "@kubernetes/client-node";

export function loadKubeConfig(path?: string): KubeConfig {
  const kc = new KubeConfig();
  if (path) kc.loadFromFile(path);
  else if (process.env.KUBERNETES_SERVICE_HOST) kc.loadFromCluster();
  else kc.loadFromDefault();
  if (!kc.getCurrentCluster())
    throw new Error(
      path
        ? `kubeconfig ${path} names no current cluster`
        : "no Kubernetes API: pass --kubeconfig, set KUBECONFIG, or run in a pod with a service account",
    );
  return kc;
}

export interface UserKubeConfig {
  kc: KubeConfig;
  /** The namespace the chosen context names, else `default` (kubectl's rule). */
  namespace: string;
}

/**
 * A command line's API server, found as kubectl finds it: `--kubeconfig`, else every file in
 * `$KUBECONFIG` (merged; for a name in several files the first wins, as kubectl's rule is), else
 * `$HOME/.kube/config`, else in-cluster; `--context` picks a context other than the current one.
 * `env` is injected so tests never touch process.env.
 */
export function loadUserKubeConfig(opts: {
  kubeconfig?: string | undefined;
  context?: string | undefined;
  env: Readonly<Record<string, string | undefined>>;
}): UserKubeConfig {
  const { env } = opts;
  const kc = new KubeConfig();
  const files = opts.kubeconfig
    ? [opts.kubeconfig]
    : (env.KUBECONFIG ?? "").split(delimiter).filter((f) => f !== "");
  const home = env.HOME ? join(env.HOME, ".kube", "config") : undefined;
  if (files.length === 0 && home && existsSync(home)) files.push(home);
  if (files.length > 0) {
    const [first, ...rest] = files;
    loadFile(kc, first!);
    for (const file of rest) {
      if (!existsSync(file)) continue;
      const more = new KubeConfig();
      loadFile(more, file);
      mergeFirstWins(kc, more);
    }
  } else if (env.KUBERNETES_SERVICE_HOST) {
    kc.loadFromCluster();
  } else {
    throw new Error(
      "no Kubernetes configuration: pass --kubeconfig, set KUBECONFIG, or create ~/.kube/config",
    );
  }
  if (opts.context) {
    if (!kc.getContextObject(opts.context))
      throw new Error(`context "${opts.context}" does not exist in ${files.join(", ") || "the kubeconfig"}`);
    kc.setCurrentContext(opts.context);
  }
  const context = kc.getContextObject(kc.getCurrentContext());
  if (!kc.getCurrentCluster())
    throw new Error(
      `the kubeconfig (${files.join(", ") || "in-cluster"}) has no current context with a cluster; pass --context`,
    );
  return { kc, namespace: context?.namespace || "default" };
}

function loadFile(kc: KubeConfig, file: string): void {
  try {
    kc.loadFromFile(file);
  } catch (err) {
    throw new Error(`cannot read kubeconfig ${file}: ${(err as Error).message}`, { cause: err });
  }
}

function mergeFirstWins(kc: KubeConfig, more: KubeConfig): void {
  for (const c of more.clusters) if (!kc.clusters.some((x) => x.name === c.name)) kc.addCluster(c);
  for (const u of more.users) if (!kc.users.some((x) => x.name === u.name)) kc.addUser(u);
  for (const c of more.contexts) if (!kc.contexts.some((x) => x.name === c.name)) kc.addContext(c);
  if (!kc.getCurrentContext() && more.getCurrentContext()) kc.setCurrentContext(more.getCurrentContext());
}
