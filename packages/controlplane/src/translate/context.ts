// What every translation step shares: the mesh options, the warnings collected on the way, and
// small helpers for labels and names. Translation is pure: same objects and options in, same
// bytes out.

import { type KubeObject, objectKey } from "@ambient/kube";

export interface TranslateOptions {
  /** Istio's cluster name; part of every workload uid. */
  clusterId: string;
  /** SPIFFE trust domain of workload identities. */
  trustDomain: string;
  /** Istio's root namespace: policies here apply mesh-wide. */
  rootNamespace: string;
  /** Network of the workloads and VIPs; "" is Istio's default single network. */
  network?: string;
  /**
   * Give ServiceEntry hosts without `addresses` a VIP from 240.240.0.0/16 (auto-allocate.ts), as
   * Istio does for DNS proxying. Default true.
   */
  autoAllocateAddresses?: boolean;
}

export const DEFAULT_OPTIONS: TranslateOptions = {
  clusterId: "Kubernetes", // Istio's default CLUSTER_ID
  trustDomain: "cluster.local",
  rootNamespace: "istio-system",
};

/** Kubernetes' cluster DNS domain; service hostnames use it whatever the trust domain is. */
const DOMAIN_SUFFIX = "svc.cluster.local";

export interface Warning {
  /** objectKey of the object the warning is about. */
  object: string;
  message: string;
}

export class TranslateContext {
  readonly options: Required<TranslateOptions>;
  readonly warnings: Warning[] = [];

  constructor(options: Partial<TranslateOptions>) {
    this.options = {
      clusterId: options.clusterId || DEFAULT_OPTIONS.clusterId,
      trustDomain: options.trustDomain || DEFAULT_OPTIONS.trustDomain,
      rootNamespace: options.rootNamespace || DEFAULT_OPTIONS.rootNamespace,
      network: options.network ?? "",
      autoAllocateAddresses: options.autoAllocateAddresses ?? true,
    };
  }

  warn(obj: KubeObject, message: string): void {
    this.warnings.push({ object: objectKey(obj), message });
  }
}

export function labelsOf(obj: KubeObject): Record<string, string> {
  return obj.metadata.labels ?? {};
}

export function annotationsOf(obj: KubeObject): Record<string, string> {
  return obj.metadata.annotations ?? {};
}

export function serviceHostname(name: string, namespace: string): string {
  return `${name}.${namespace}.${DOMAIN_SUFFIX}`;
}

/** Code-point order, independent of locale, so output bytes never depend on the host. */
export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
