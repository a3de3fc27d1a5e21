// ztunnel's Delta ADS subscription: Istio's Address and Authorization types from the control
// plane, each resource decoded and validated before any is applied to ProxyState, so a bad push
// is NACKed whole and the proxy keeps serving from the last good state (also while disconnected).

import {
  ADDRESS_TYPE_URL,
  type Address,
  AUTHORIZATION_TYPE_URL,
  type Authorization,
  type CredentialsSource,
  DeltaAdsClient,
  decodeAddress,
  decodeAuthorization,
  type Logger,
  type XdsResourceHandler,
} from "@ambient/core";
import type { ChannelOptions } from "@grpc/grpc-js";
import type { ProxyState } from "../state/proxy-state.js";
import { validateAddress, validateAuthorization } from "./validate.js";

/** Where Istio installs ztunnel; it is part of the node id istiod parses. */
export const DEFAULT_ZTUNNEL_NAMESPACE = "istio-system";

export interface XdsClientOptions {
  /** "host:port" of the control plane's xDS port. */
  address: string;
  nodeName: string;
  nodeIp: string;
  clusterId: string;
  /** The ztunnel pod's name; in local mode there is no pod, and the node name stands in. */
  podName?: string;
  podNamespace?: string;
  /** Sent as `authorization: Bearer <token>`, read again on every (re)connect. */
  token?: () => Promise<string | undefined> | string | undefined;
  state: ProxyState;
  logger: Logger;
  /** Plaintext when omitted (local mode); a function is asked before every (re)connect. */
  credentials?: CredentialsSource;
  channelOptions?: ChannelOptions;
  backoff?: { initialMs?: number; maxMs?: number };
}

/**
 * Istio's ztunnel node: id `ztunnel~<ip>~<pod>.<ns>~<ns>.svc.cluster.local` and the metadata
 * istiod reads (NAME, NAMESPACE, INSTANCE_IPS, NODE_NAME, CLUSTER_ID), so that either control
 * plane can tell which ztunnel, on which node, is connected.
 */
export function ztunnelNode(
  opts: Pick<XdsClientOptions, "nodeName" | "nodeIp" | "clusterId" | "podName" | "podNamespace">,
) {
  const pod = opts.podName ?? opts.nodeName;
  const ns = opts.podNamespace ?? DEFAULT_ZTUNNEL_NAMESPACE;
  return {
    id: `ztunnel~${opts.nodeIp}~${pod}.${ns}~${ns}.svc.cluster.local`,
    cluster: opts.clusterId,
    metadata: {
      NAME: pod,
      NAMESPACE: ns,
      INSTANCE_IPS: opts.nodeIp,
      NODE_NAME: opts.nodeName,
      CLUSTER_ID: opts.clusterId,
    },
  };
}

/** The Address and Authorization handlers that feed `state`. */
export function proxyStateHandlers(state: ProxyState): XdsResourceHandler<unknown>[] {
  const addressHandler: XdsResourceHandler<Address> = {
    typeUrl: ADDRESS_TYPE_URL,
    decode: (name, bytes) => validateAddress(name, decodeAddress(bytes, name)),
    apply: (changes) => state.applyAddresses(changes),
  };
  const authorizationHandler: XdsResourceHandler<Authorization> = {
    typeUrl: AUTHORIZATION_TYPE_URL,
    decode: (name, bytes) => validateAuthorization(name, decodeAuthorization(bytes, name)),
    apply: (changes) => state.applyAuthorizations(changes),
  };
  return [addressHandler, authorizationHandler] as XdsResourceHandler<unknown>[];
}

/**
 * Connects to the control plane and keeps `state` following it until `close()`. The client's
 * `synced` flag turns true once both types had a response applied; `whenSynced` waits for it.
 */
export function startXdsClient(opts: XdsClientOptions): DeltaAdsClient {
  const token = opts.token;
  const client = new DeltaAdsClient({
    address: opts.address,
    node: ztunnelNode(opts),
    handlers: proxyStateHandlers(opts.state),
    logger: opts.logger.child({ component: "ztunnel-xds", node: opts.nodeName }),
    ...(opts.credentials ? { credentials: opts.credentials } : {}),
    ...(opts.channelOptions ? { channelOptions: opts.channelOptions } : {}),
    ...(opts.backoff ? { backoff: opts.backoff } : {}),
    metadata: async (): Promise<Record<string, string>> => {
      const value = await token?.();
      return value ? { authorization: `Bearer ${value}` } : {};
    },
  });
  client.start();
  return client;
}

/**
 * Resolves once `client` has synced (at once if it has). Rejects when `signal` aborts, so a
 * readiness wait can be bounded; a client that never reaches the control plane never syncs.
 */
export function whenSynced(client: DeltaAdsClient, signal?: AbortSignal): Promise<void> {
  if (client.synced) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      client.off("synced", onSynced);
      reject(signal?.reason);
    };
    const onSynced = () => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    };
    if (signal?.aborted) return reject(signal.reason);
    signal?.addEventListener("abort", onAbort, { once: true });
    client.once("synced", onSynced);
  });
}

/**
 * A readiness reason that says why, while the control plane cannot be reached or refuses us;
 * `via` says how it was dialled (TLS: the name and root checked), which a TLS failure refers to.
 */
export function xdsNotSynced(address: string, client: DeltaAdsClient | undefined, via?: string): string {
  const why = client?.lastError?.message;
  return `xDS not synced with ${address}${via ? ` (${via})` : ""}${why ? `: ${why}` : ""}`;
}
