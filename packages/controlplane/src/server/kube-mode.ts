// What Kubernetes mode adds to the control plane: objects from the API (KubeApiSource with the
// control plane's validator), callers authenticated by TokenReview and authorized by Istio's node
// rules over the pods in the source, the TLS port with its renewed serving certificate, and the
// root certificate published to every namespace.

import type { CertificateAuthority, HostPort, Logger } from "@ambient/core";
import type { KubeObject } from "@ambient/kube";
import { KubeApiSource, type KubeConfig } from "@ambient/kube/api";
import type * as grpc from "@grpc/grpc-js";
import { KubeNodeAuthorizer, PodIndex } from "../ca/node-authorizer.js";
import { TokenReviewAuthenticator } from "../ca/token-review.js";
import { validateObject } from "../validate/index.js";
import { type GrpcListener, listenGrpc } from "./grpc-listener.js";
import { RootCertPublisher } from "./root-cert-publisher.js";
import { ServingCertificate } from "./serving-cert.js";

export interface KubeModeOptions {
  kubeConfig: KubeConfig;
  /** TLS gRPC (Delta ADS + CA), istiod's 15012. */
  tlsListen: HostPort;
  servingDns: readonly string[];
  servingIps: readonly string[];
  /** `ns/sa` accounts whose pods may ask for identities of pods on their node (CA_TRUSTED_NODE_ACCOUNTS). */
  trustedNodeAccounts: readonly string[];
  /** Tests: a short-lived serving certificate, to watch it renew. */
  servingCertTtlSeconds?: number;
  /** Tests: a quicker watchdog and backoff for every reflector. */
  reflector?: { watchdogMs?: number; backoff?: { initialMs?: number; maxMs?: number } };
}

export class KubeMode {
  readonly source: KubeApiSource;
  readonly authenticator: TokenReviewAuthenticator;
  readonly authorizer: KubeNodeAuthorizer;
  private pods = PodIndex.EMPTY;
  private namespaces: string[] = [];
  private servingCert: ServingCertificate | undefined;
  private publisher: RootCertPublisher | undefined;
  private listener: GrpcListener | undefined;

  constructor(
    private readonly o: KubeModeOptions,
    private readonly ca: CertificateAuthority,
    private readonly logger: Logger,
  ) {
    this.source = new KubeApiSource(o.kubeConfig, {
      logger: logger.child({ component: "kube-source" }),
      validate: validateObject,
      ...(o.reflector ? { reflector: o.reflector } : {}),
    });
    this.authenticator = new TokenReviewAuthenticator(o.kubeConfig);
    this.authorizer = new KubeNodeAuthorizer(ca.trustDomain, new Set(o.trustedNodeAccounts), () => this.pods);
  }

  /** After each publish: the pods the CA authorizes against, the namespaces that need the root. */
  published(objects: readonly KubeObject[]): void {
    this.pods = PodIndex.build(objects, this.ca.trustDomain);
    this.namespaces = objects.filter((o) => o.kind === "Namespace").map((o) => o.metadata.name);
    this.publisher?.setNamespaces(this.namespaces);
  }

  /** Once the first configuration is published: the serving certificate, the TLS port, the root publisher. */
  async serve(server: grpc.Server, opts: { prefaceTimeoutMs?: number }): Promise<number> {
    this.servingCert = await ServingCertificate.start({
      ca: this.ca,
      dnsNames: this.o.servingDns,
      ipAddresses: this.o.servingIps,
      logger: this.logger,
      ...(this.o.servingCertTtlSeconds !== undefined ? { ttlSeconds: this.o.servingCertTtlSeconds } : {}),
    });
    const cert = this.servingCert;
    this.listener = await listenGrpc(server, this.o.tlsListen, this.logger, {
      ...opts,
      tls: () => cert.secureContext,
    });
    this.publisher = new RootCertPublisher({
      kc: this.o.kubeConfig,
      rootCertPem: this.ca.rootCertsPem.join(""),
      logger: this.logger,
      ...(this.o.reflector ? { reflector: this.o.reflector } : {}),
    });
    this.publisher.setNamespaces(this.namespaces);
    await this.publisher.start();
    return this.listener.port;
  }

  async stop(): Promise<void> {
    this.servingCert?.stop();
    this.listener?.close();
    await this.publisher?.stop();
  }
}
