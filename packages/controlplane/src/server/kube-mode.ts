// What Kubernetes mode adds to the control plane: objects from the API (KubeApiSource with the
// control plane's validator), callers authenticated by TokenReview and authorized by Istio's node
// rules over the pods in the source, the TLS port with its renewed serving certificate, and the
// root certificate published to every namespace, the waypoint controller (Gateways of class
// istio-waypoint → their Deployment, Service and ServiceAccount), and status conditions that kubectl
// shows (WaypointBound on Services, ZtunnelAccepted/WaypointAccepted on AuthorizationPolicies).

import { type CertificateAuthority, type HostPort, type Logger, parseHostPort } from "@ambient/core";
import type { KubeObject } from "@ambient/kube";
import { KubeApiSource, type KubeConfig, loadKubeConfig } from "@ambient/kube/api";
import type * as grpc from "@grpc/grpc-js";
import { KubeNodeAuthorizer, PodIndex } from "../ca/node-authorizer.js";
import { TokenReviewAuthenticator } from "../ca/token-review.js";
import {
  istiodNames,
  NAMESPACE_DEFAULT,
  SERVICE_NAME,
  TLS_LISTEN_DEFAULT,
  TRUSTED_NODE_ACCOUNTS_DEFAULT,
  WAYPOINT_IMAGE_DEFAULT,
} from "../config.js";
import type { StatusTarget } from "../status/conditions.js";
import { StatusTracker } from "../status/tracker.js";
import { StatusWriter } from "../status/writer.js";
import type { TranslateResult, TranslationChange } from "../translate/index.js";
import { validateObject } from "../validate/index.js";
import { WaypointController } from "../waypoints/controller.js";
import { type GrpcListener, listenGrpc } from "./grpc-listener.js";
import { RootCertPublisher } from "./root-cert-publisher.js";
import { ServingCertificate } from "./serving-cert.js";

/**
 * Kubernetes mode, as `ambient-controlplane --kubeconfig` parses it or a program (ambientctl) passes
 * it to `ControlPlane.start({ kube })`. Only where the API server is must be said; the rest has
 * istiod's defaults.
 */
export interface KubeModeOptions {
  /** A kubeconfig file; without it (and without `kubeConfig`), in-cluster (the pod's service account). */
  kubeconfig?: string | undefined;
  /** An already loaded configuration instead of `kubeconfig`. */
  kubeConfig?: KubeConfig;
  /** TLS gRPC (Delta ADS + CA): istiod's 0.0.0.0:15012. */
  tlsListen?: HostPort;
  /** Where the control plane's Service `istiod` lives: istio-system. */
  namespace?: string;
  /** Extra DNS SANs for the serving certificate, after istiod's Service names. */
  servingDns?: readonly string[];
  /** IP SANs (a harness on loopback dials the control plane by IP). */
  servingIps?: readonly string[];
  /** `ns/sa` accounts whose pods may ask for identities of pods on their node (CA_TRUSTED_NODE_ACCOUNTS). */
  trustedNodeAccounts?: readonly string[];
  /** The mesh's cluster id (CLUSTER_ID), given to waypoint pods. */
  clusterId?: string;
  /** The image of the waypoint pods the controller creates; `false` runs no waypoint controller. */
  waypointImage?: string | false;
  /** Tests: a short-lived serving certificate, to watch it renew. */
  servingCertTtlSeconds?: number;
  /** Tests: a quicker watchdog and backoff for every reflector. */
  reflector?: { watchdogMs?: number; backoff?: { initialMs?: number; maxMs?: number } };
}

/** The options with their kubeconfig loaded, so the CA (ca-secret.ts) and KubeMode share one. */
export function withKubeConfig(o: KubeModeOptions): KubeModeOptions & { kubeConfig: KubeConfig } {
  return { ...o, kubeConfig: o.kubeConfig ?? loadKubeConfig(o.kubeconfig) };
}

export class KubeMode {
  readonly source: KubeApiSource;
  readonly authenticator: TokenReviewAuthenticator;
  readonly authorizer: KubeNodeAuthorizer;
  private readonly pods: PodIndex;
  private namespaces: string[] = [];
  private servingCert: ServingCertificate | undefined;
  private publisher: RootCertPublisher | undefined;
  private listener: GrpcListener | undefined;
  private waypoints: WaypointController | undefined;
  private status: StatusWriter | undefined;
  private readonly desired = new StatusTracker();
  private targets: readonly StatusTarget[] = [];
  private readonly kc: KubeConfig;
  readonly tlsListen: HostPort;

  constructor(
    private readonly o: KubeModeOptions,
    private readonly ca: CertificateAuthority,
    private readonly logger: Logger,
  ) {
    this.kc = o.kubeConfig ?? loadKubeConfig(o.kubeconfig);
    this.tlsListen = o.tlsListen ?? parseHostPort(TLS_LISTEN_DEFAULT)!;
    this.source = new KubeApiSource(this.kc, {
      logger: logger.child({ component: "kube-source" }),
      validate: validateObject,
      ...(o.reflector ? { reflector: o.reflector } : {}),
    });
    this.authenticator = new TokenReviewAuthenticator(this.kc);
    const trusted = o.trustedNodeAccounts ?? [TRUSTED_NODE_ACCOUNTS_DEFAULT];
    this.pods = new PodIndex(ca.trustDomain);
    this.authorizer = new KubeNodeAuthorizer(ca.trustDomain, new Set(trusted), () => this.pods);
  }

  /**
   * After each publish: the pods the CA authorizes against, the namespaces that need the root, the
   * status conditions of Services and AuthorizationPolicies. The pod index and the conditions follow
   * the translation's change (an edit updates what it touched), so a pod edit costs one entry here.
   */
  published(objects: readonly KubeObject[], result: TranslateResult, change: TranslationChange): void {
    this.pods.update(change);
    this.namespaces = objects.filter((o) => o.kind === "Namespace").map((o) => o.metadata.name);
    this.publisher?.setNamespaces(this.namespaces);
    this.targets = this.desired.update(change, result);
    this.status?.update(this.targets);
  }

  /** Once the first configuration is published: the serving certificate, the TLS port, the root publisher. */
  async serve(server: grpc.Server, opts: { prefaceTimeoutMs?: number }): Promise<number> {
    this.servingCert = await ServingCertificate.start({
      ca: this.ca,
      dnsNames: [...istiodNames(this.o.namespace ?? NAMESPACE_DEFAULT), ...(this.o.servingDns ?? [])],
      ipAddresses: this.o.servingIps ?? [],
      logger: this.logger,
      ...(this.o.servingCertTtlSeconds !== undefined ? { ttlSeconds: this.o.servingCertTtlSeconds } : {}),
    });
    const cert = this.servingCert;
    this.listener = await listenGrpc(server, this.tlsListen, this.logger, {
      ...opts,
      tls: () => cert.secureContext,
    });
    this.publisher = new RootCertPublisher({
      kc: this.kc,
      rootCertPem: this.ca.rootCertsPem.join(""),
      logger: this.logger,
      ...(this.o.reflector ? { reflector: this.o.reflector } : {}),
    });
    this.publisher.setNamespaces(this.namespaces);
    await this.publisher.start();
    this.status = new StatusWriter({
      kc: this.kc,
      logger: this.logger,
      ...(this.o.reflector?.backoff ? { backoff: this.o.reflector.backoff } : {}),
    });
    this.status.update(this.targets);
    this.startWaypoints();
    return this.listener.port;
  }

  /**
   * In the background: its first lists wait for the Gateway API CRDs, which a cluster may install
   * after the control plane; xDS and the CA must not wait for them.
   */
  private startWaypoints(): void {
    if (this.o.waypointImage === false) return;
    const namespace = this.o.namespace ?? NAMESPACE_DEFAULT;
    this.waypoints = new WaypointController({
      kc: this.kc,
      logger: this.logger.child({ component: "waypoint-controller" }),
      image: this.o.waypointImage ?? WAYPOINT_IMAGE_DEFAULT,
      controlPlaneAddress: `${SERVICE_NAME}.${namespace}.svc:15012`,
      trustDomain: this.ca.trustDomain,
      clusterId: this.o.clusterId ?? "Kubernetes",
      clusterDomain: "cluster.local",
      ...(this.o.reflector ? { reflector: this.o.reflector } : {}),
    });
    this.waypoints.start().catch((err: unknown) => {
      this.logger.error(
        { err },
        "the waypoint controller did not start: Gateways of class istio-waypoint or istio get no pods",
      );
    });
  }

  async stop(): Promise<void> {
    await this.waypoints?.stop();
    await this.status?.stop();
    this.servingCert?.stop();
    this.listener?.close();
    await this.publisher?.stop();
  }
}
