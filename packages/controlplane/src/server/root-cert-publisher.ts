// Publishes the mesh root as ConfigMap `istio-ca-root-cert` (key `root-cert.pem`) in every
// namespace, as istiod's namespace controller does: pods mount it to verify the control plane and
// their peers. Created for each new namespace, repaired when edited or deleted. Namespaces come from
// the object source; the ConfigMaps from a reflector of their own (only that name, all namespaces),
// so a repair follows the edit's watch event without polling. Writes are server-side applies with
// the control plane's credentials, serialized, retried with backoff while the API server fails.

import { Backoff, errorMessage, type Logger } from "@ambient/core";
import type { KubeObject } from "@ambient/kube";
import { apiStatusOf, type KubeConfig, Reflector, requestJson } from "@ambient/kube/api";

export const ROOT_CERT_CONFIGMAP = "istio-ca-root-cert";
export const ROOT_CERT_KEY = "root-cert.pem";
/** Our field manager for server-side apply (istiod's writers are named `istio.io/...`). */
const FIELD_MANAGER = "ambient.istio.io/root-cert-publisher";
/** istiod skips these (its ignored namespaces, kube-system excepted): nothing meshed runs there. */
const SKIPPED_NAMESPACES = new Set(["kube-public", "kube-node-lease", "local-path-storage"]);
const CONFIGMAPS = { group: "", version: "v1", plural: "configmaps", kind: "ConfigMap", namespaced: true };

export interface RootCertPublisherOptions {
  kc: KubeConfig;
  /** The content of root-cert.pem: every root workloads should trust. */
  rootCertPem: string;
  logger: Logger;
  /** Tests shorten the reflector's watchdog and both backoffs. */
  reflector?: { watchdogMs?: number; backoff?: { initialMs?: number; maxMs?: number } };
}

export class RootCertPublisher {
  private namespaces = new Set<string>();
  /** namespace → the root-cert.pem its ConfigMap holds now (absent: no ConfigMap). */
  private readonly held = new Map<string, string | undefined>();
  private readonly pending = new Set<string>();
  private readonly reflector: Reflector;
  private readonly backoff: Backoff;
  private readonly log: Logger;
  private draining: Promise<void> | undefined;
  private running = false;
  private retry: NodeJS.Timeout | undefined;
  private listed = false;
  private stopped = false;

  constructor(private readonly o: RootCertPublisherOptions) {
    this.log = o.logger.child({ component: "root-cert-publisher" });
    const b = o.reflector?.backoff;
    this.backoff = new Backoff(b?.initialMs ?? 500, b?.maxMs ?? 30_000);
    this.reflector = new Reflector({
      kc: o.kc,
      resource: CONFIGMAPS,
      logger: this.log,
      fieldSelector: `metadata.name=${ROOT_CERT_CONFIGMAP}`,
      ...(o.reflector ?? {}),
      onEvent: (type, obj) => this.onConfigMap(type, obj),
    });
  }

  /** Lists the ConfigMaps that exist, then writes what is missing or wrong. */
  async start(): Promise<void> {
    await this.reflector.start();
    this.listed = true;
    for (const ns of this.namespaces) this.check(ns);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retry);
    await this.reflector.stop();
    await this.draining;
  }

  /** The namespaces that exist now (from the object source, after each change). */
  setNamespaces(names: Iterable<string>): void {
    const next = new Set([...names].filter((n) => !SKIPPED_NAMESPACES.has(n)));
    for (const ns of this.namespaces) if (!next.has(ns)) this.pending.delete(ns);
    const added = [...next].filter((ns) => !this.namespaces.has(ns));
    this.namespaces = next;
    for (const ns of added) this.check(ns);
  }

  private onConfigMap(type: string, obj: KubeObject): void {
    const ns = obj.metadata.namespace ?? "";
    if (type === "DELETED") this.held.delete(ns);
    else this.held.set(ns, (obj.data as Record<string, string> | undefined)?.[ROOT_CERT_KEY]);
    this.check(ns);
  }

  private check(ns: string): void {
    if (!this.listed || this.stopped || !this.namespaces.has(ns)) return;
    if (this.held.get(ns) === this.o.rootCertPem) return;
    this.pending.add(ns);
    if (!this.running) this.draining = this.drain();
  }

  /** Writes what is pending, one at a time; stops at the first failure and retries after a backoff. */
  private async drain(): Promise<void> {
    this.running = true;
    try {
      while (this.pending.size > 0 && !this.stopped) {
        const ns = this.pending.values().next().value as string;
        this.pending.delete(ns);
        if (!this.namespaces.has(ns) || this.held.get(ns) === this.o.rootCertPem) continue;
        const what = this.held.has(ns) ? "repaired" : "created";
        try {
          const written = await this.apply(ns);
          this.held.set(ns, (written.data as Record<string, string> | undefined)?.[ROOT_CERT_KEY]);
          this.backoff.reset();
          this.log[what === "repaired" ? "info" : "debug"](
            { namespace: ns },
            `${what} ${ROOT_CERT_CONFIGMAP}`,
          );
        } catch (err) {
          const status = apiStatusOf(err);
          // The namespace went away (404) or is terminating (403): the source will say so.
          if (status === 404 || status === 403) {
            this.log.debug(
              { namespace: ns, status },
              `not writing ${ROOT_CERT_CONFIGMAP}: ${errorMessage(err)}`,
            );
            continue;
          }
          this.pending.add(ns);
          const delay = this.backoff.next();
          this.log.warn(
            { namespace: ns, retryInMs: delay },
            `cannot write ${ROOT_CERT_CONFIGMAP}: ${errorMessage(err)}`,
          );
          clearTimeout(this.retry);
          this.retry = setTimeout(() => {
            for (const n of [...this.pending]) this.check(n);
          }, delay);
          return;
        }
      }
    } finally {
      this.running = false;
    }
  }

  /** Server-side apply: creates the ConfigMap or takes back our key, whoever changed it. */
  private apply(ns: string): Promise<KubeObject> {
    return requestJson<KubeObject>(
      this.o.kc,
      "PATCH",
      `/api/v1/namespaces/${ns}/configmaps/${ROOT_CERT_CONFIGMAP}`,
      {
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: { name: ROOT_CERT_CONFIGMAP, namespace: ns, labels: { "istio.io/config": "true" } },
        data: { [ROOT_CERT_KEY]: this.o.rootCertPem },
      },
      { query: { fieldManager: FIELD_MANAGER, force: "true" }, contentType: "application/apply-patch+yaml" },
    );
  }
}
