// The control plane process: an object source (a manifests folder, or the Kubernetes API in
// Kubernetes mode: kube-mode.ts) → validated objects → translation → xDS store, served over gRPC
// together with the workload CA (plaintext locally; TLS with authenticated callers in Kubernetes
// mode). Publishes are serialized; each batch of source changes is one translation and one push batch.

import { join } from "node:path";
import {
  addDeltaAdsService,
  CertificateAuthority,
  type DeltaAdsHooks,
  DeltaAdsServer,
  formatHostPort,
  type HostPort,
  type Logger,
  protos,
  ResourceStore,
  routeGrpcLogs,
  type XdsClientInfo,
} from "@ambient/core";
import type { KubeObject, ObjectSource, SourceProblem } from "@ambient/kube";
import { FolderSource } from "@ambient/kube/manifests";
import * as grpc from "@grpc/grpc-js";
import { type CallerAuthenticator, LocalTokenAuthenticator } from "../ca/authenticator.js";
import { describeCaller, type IdentityAuthorizer, NodeTokenAuthorizer } from "../ca/authorizer.js";
import { createCaHandlers } from "../ca/ca-service.js";
import { NAMESPACE_DEFAULT } from "../config.js";
import { AddressAllocator } from "../local/address-allocator.js";
import { synthesizeWaypoints } from "../local/waypoint-pods.js";
import { type TranslateResult, Translator, type Warning } from "../translate/index.js";
import { validateObject } from "../validate/index.js";
import { GRPC_SERVER_OPTIONS, type GrpcListener, listenGrpc } from "./grpc-listener.js";
import type { KubeMode, KubeModeOptions } from "./kube-mode.js";
import { Monitoring } from "./monitoring.js";
import { nodeIdentityIndex, Publisher } from "./publisher.js";
import { addAuthenticatedDeltaAdsService } from "./xds-auth.js";

export interface ControlPlaneOptions {
  /** The manifests folder, read as the object source unless `source` or `kube` is given. */
  configDir?: string | undefined;
  /** Where objects come from instead of `configDir` (a test's own source). */
  source?: ObjectSource;
  /**
   * Kubernetes mode: objects from the API, TLS on `kube.tlsListen` with callers authenticated by
   * TokenReview (xDS and CA), the root published to every namespace. Local mode without it.
   */
  kube?: KubeModeOptions;
  /** Plaintext gRPC (Delta ADS + CA); optional in Kubernetes mode only. */
  listen?: HostPort | undefined;
  stateDir: string;
  /** Plugged-in CA folder (Istio layout); otherwise a self-signed root is kept in stateDir/ca. */
  caDir?: string | undefined;
  trustDomain: string;
  clusterId: string;
  rootNamespace: string;
  logger: Logger;
  /** Follow the folder for changes (default true). Tests may call `reload()` themselves. */
  watch?: boolean;
  hooks?: DeltaAdsHooks;
  /**
   * Local mode: give Nodes, Pods and Services without addresses their own 127.10.x.y, and create
   * each waypoint Gateway's Pod and Service as Istio's deployment controller would (see local/).
   */
  allocateLocalAddresses?: boolean;
  /** A connection must send the HTTP/2 preface within this (grpc-listener.ts; tests shorten it). */
  prefaceTimeoutMs?: number;
  /** The monitoring port (istiod's 15014: /ready, /metrics); none when absent. */
  monitoring?: HostPort | undefined;
}

export type PublishedListener = (objects: readonly KubeObject[], result: TranslateResult) => void;

const EMPTY_RESULT: TranslateResult = {
  workloads: [],
  workloadPods: [],
  services: [],
  entryServices: new Map(),
  authorizations: [],
  waypointConfig: {
    virtualServices: [],
    destinationRules: [],
    authorizationPolicies: [],
    requestAuthentications: [],
    gateways: [],
    ingress: { gateways: [], secrets: [], policies: [] },
  },
  routeStatus: new Map(),
  warnings: [],
};

export class ControlPlane {
  private result: TranslateResult = EMPTY_RESULT;
  private identities = new Map<string, Set<string>>();
  private reloading: Promise<void> = Promise.resolve();
  /** Bumped by every change of the source; a publish records the version it translated. */
  private sourceVersion = 0;
  private publishedVersion = -1;
  private boundPort = 0;
  private tlsPort = 0;
  private listener: GrpcListener | undefined;
  private monitoring: Monitoring | undefined;
  private monitoringBound: HostPort | undefined;
  private reportedWarnings = new Set<string>();
  private effective: KubeObject[] = [];
  private readonly allocator: AddressAllocator | undefined;
  /** Kept across publishes: each one recomputes only what the change reached. */
  private readonly translator: Translator;
  private readonly publisher: Publisher;
  private readonly publishedListeners = new Set<PublishedListener>();

  private constructor(
    private readonly opts: ControlPlaneOptions,
    readonly store: ResourceStore,
    readonly ca: CertificateAuthority,
    /** Local mode's node bootstrap tokens (none in Kubernetes mode). */
    readonly tokens: LocalTokenAuthenticator | undefined,
    private readonly kube: KubeMode | undefined,
    private readonly source: ObjectSource,
    private readonly ads: DeltaAdsServer,
    private readonly grpcServer: grpc.Server,
    private readonly logger: Logger,
  ) {
    this.allocator = opts.allocateLocalAddresses ? new AddressAllocator() : undefined;
    this.publisher = new Publisher(store);
    this.translator = new Translator({
      clusterId: opts.clusterId,
      trustDomain: opts.trustDomain,
      rootNamespace: opts.rootNamespace,
    });
  }

  /**
   * Opens the plaintext port, loads the CA and the objects, publishes, then starts serving: the
   * port holds its connections until then (grpc-listener.ts `ready`), so clients connect while the
   * control plane loads and receive the first snapshot as soon as it exists, never a half state.
   */
  static async start(opts: ControlPlaneOptions): Promise<ControlPlane> {
    const logger = opts.logger.child({ component: "controlplane" });
    routeGrpcLogs(opts.logger);
    if (!opts.kube && !opts.listen) throw new Error("ControlPlane: local mode needs `listen`");
    // First, so a readiness probe hears "loading" (503) rather than nothing while the sources load.
    const monitoring = opts.monitoring ? new Monitoring(logger) : undefined;
    const monitoringBound = opts.monitoring ? await monitoring?.listen(opts.monitoring) : undefined;
    const server = new grpc.Server(GRPC_SERVER_OPTIONS);
    const listenOpts = opts.prefaceTimeoutMs !== undefined ? { prefaceTimeoutMs: opts.prefaceTimeoutMs } : {};
    let serving!: () => void;
    const ready = new Promise<void>((resolve) => {
      serving = resolve;
    });
    let listener: GrpcListener | undefined;
    try {
      listener = opts.listen
        ? await listenGrpc(server, opts.listen, opts.logger, { ...listenOpts, ready })
        : undefined;
      const cp = await ControlPlane.load(opts, logger, server, listener, monitoring);
      cp.monitoringBound = monitoringBound;
      serving();
      monitoring?.set("serving");
      return cp;
    } catch (err) {
      listener?.close();
      await monitoring?.close();
      throw err;
    }
  }

  private static async load(
    opts: ControlPlaneOptions,
    logger: Logger,
    server: grpc.Server,
    listener: GrpcListener | undefined,
    monitoring: Monitoring | undefined,
  ): Promise<ControlPlane> {
    const caOpts = { trustDomain: opts.trustDomain };
    // Loaded on demand: local mode never loads the Kubernetes client library.
    const kubeMode = opts.kube ? await import("./kube-mode.js") : undefined;
    const kubeOpts = opts.kube && kubeMode ? kubeMode.withKubeConfig(opts.kube) : undefined;
    const ca = opts.caDir
      ? await CertificateAuthority.fromPluggedFolder(opts.caDir, caOpts)
      : kubeOpts
        ? // In a cluster the pod's state folder does not outlive the pod: the root is kept in the API.
          await (await import("../ca/ca-secret.js")).loadOrCreateCaSecret(
            kubeOpts.kubeConfig,
            kubeOpts.namespace ?? NAMESPACE_DEFAULT,
            caOpts,
            logger,
          )
        : await CertificateAuthority.loadOrCreate(join(opts.stateDir, "ca"), caOpts);
    const kube =
      kubeOpts && kubeMode
        ? new kubeMode.KubeMode({ clusterId: opts.clusterId, ...kubeOpts }, ca, opts.logger)
        : undefined;
    const tokens = kube ? undefined : await LocalTokenAuthenticator.open(opts.stateDir);
    const source = opts.source ?? kube?.source ?? folderSource(opts);
    const store = new ResourceStore();
    const hooks = monitoring ? monitoring.adsHooks(opts.hooks) : (opts.hooks ?? {});
    const ads = new DeltaAdsServer({ store, logger: opts.logger, hooks });
    const cp = new ControlPlane(opts, store, ca, tokens, kube, source, ads, server, logger);
    cp.monitoring = monitoring;
    let loaded = false;
    source.onChange(() => {
      cp.sourceVersion++;
      // Nobody is served while the source loads, so a change reported before start() resolves (the
      // API source reports none; another source may) waits for the one translation after it.
      if (loaded) void cp.schedulePublish();
    });

    await source.start();
    loaded = true;
    await cp.schedulePublish();
    let authenticator: CallerAuthenticator;
    let authorizer: IdentityAuthorizer;
    if (kube) {
      authenticator = kube.authenticator;
      authorizer = kube.authorizer;
      addAuthenticatedDeltaAdsService(server, ads, authenticator, opts.logger);
    } else {
      authenticator = tokens!;
      authorizer = new NodeTokenAuthorizer((node) => cp.identities.get(node) ?? new Set());
      addDeltaAdsService(server, ads);
    }
    server.addService(
      protos().caService,
      createCaHandlers({
        ca,
        authenticator,
        authorizer,
        logger: opts.logger,
        onRequest: () => monitoring?.caRequest(),
        onSigned: (caller, identity, serial) => {
          monitoring?.caSigned();
          logger.info({ caller: describeCaller(caller), identity, serial }, "certificate signed");
        },
        onRefused: (code, unauthenticated) => monitoring?.caRefused(code, unauthenticated),
      }),
    );
    const listenOpts = opts.prefaceTimeoutMs !== undefined ? { prefaceTimeoutMs: opts.prefaceTimeoutMs } : {};
    if (kube) cp.tlsPort = await kube.serve(server, listenOpts);
    if (listener) {
      cp.listener = listener;
      cp.boundPort = listener.port;
    }
    logger.info(
      {
        ...(opts.listen ? { address: cp.plaintextAddress } : {}),
        ...(kube ? { tlsAddress: cp.tlsAddress } : {}),
        source: kube ? "kubernetes" : opts.source ? "custom" : opts.configDir,
        trustDomain: opts.trustDomain,
        stateDir: opts.stateDir,
      },
      "control plane serving Delta ADS and the CA",
    );
    return cp;
  }

  /**
   * The plaintext "host:port" actually bound (the port resolved when `listen` asked for 0); in
   * Kubernetes mode without `listen`, the TLS one.
   */
  get address(): string {
    return this.plaintextAddress ?? this.tlsAddress!;
  }

  get plaintextAddress(): string | undefined {
    return this.opts.listen
      ? formatHostPort({ host: this.opts.listen.host, port: this.boundPort })
      : undefined;
  }

  /** Kubernetes mode: the TLS "host:port" actually bound. */
  /** The monitoring port's "host:port" as bound, when it was asked for. */
  get monitoringAddress(): string | undefined {
    return this.monitoringBound ? formatHostPort(this.monitoringBound) : undefined;
  }

  get tlsAddress(): string | undefined {
    return this.kube ? formatHostPort({ host: this.kube.tlsListen.host, port: this.tlsPort }) : undefined;
  }

  get snapshot(): TranslateResult {
    return this.result;
  }

  /** The objects in force, with local addresses filled in when allocating. */
  objects(): readonly KubeObject[] {
    return this.effective;
  }

  /** Called after every publish (and once at once with the current state). */
  onPublished(listener: PublishedListener): () => void {
    this.publishedListeners.add(listener);
    listener(this.effective, this.result);
    return () => this.publishedListeners.delete(listener);
  }

  get problems(): readonly SourceProblem[] {
    return this.source.problems();
  }

  clients(): XdsClientInfo[] {
    return this.ads.clients();
  }

  /** Catches up with the source now (re-reads the folder) and resolves once that is published. */
  async reload(): Promise<void> {
    await this.source.refresh();
    await this.schedulePublish();
  }

  /** Serialized, so overlapping changes never interleave; one translation per batch of changes. */
  private schedulePublish(): Promise<void> {
    this.reloading = this.reloading
      .then(() => this.publishIfChanged())
      .catch((err) => {
        this.logger.error({ err }, "translation failed; keeping the previous configuration");
      });
    return this.reloading;
  }

  private async publishIfChanged(): Promise<void> {
    if (this.publishedVersion === this.sourceVersion) return;
    this.publishedVersion = this.sourceVersion;
    const started = performance.now();
    let objects = [...this.source.objects()];
    let localWarnings: Warning[] = [];
    if (this.allocator) {
      // Waypoint pods first, so the allocator addresses them like any other pod.
      const synthesized = synthesizeWaypoints(objects);
      localWarnings = synthesized.warnings;
      objects = this.allocator.assign(synthesized.objects);
    }
    const translated = this.translator.translate(objects);
    const result = { ...translated, warnings: [...localWarnings, ...translated.warnings] };
    this.reportWarnings(result);
    // Tokens and identities first: a ztunnel for a new node can ask for certificates as soon as
    // it sees its pods in the push below.
    await this.tokens?.ensureNodes(nodeNames(objects, result));
    // Local mode's CA authorizes by node token against these; Kubernetes mode has its pod index.
    if (this.tokens) this.identities = nodeIdentityIndex(result);
    this.kube?.published(objects, result, this.translator.change!);
    this.result = result;
    this.effective = objects;
    const summary = this.publisher.publish(result);
    this.monitoring?.published();
    this.logger.info(
      { ...summary, recomputed: this.translator.stats, ms: Math.round(performance.now() - started) },
      "configuration published",
    );
    for (const listener of this.publishedListeners) {
      try {
        listener(objects, result);
      } catch (err) {
        this.logger.error({ err }, "publish listener failed");
      }
    }
  }

  private reportWarnings(result: TranslateResult): void {
    const now = new Set<string>();
    for (const w of result.warnings) {
      const id = `${w.object}|${w.message}`;
      now.add(id);
      if (!this.reportedWarnings.has(id)) this.logger.warn({ object: w.object }, w.message);
    }
    this.reportedWarnings = now;
  }

  async stop(): Promise<void> {
    // Not ready first: the Service stops sending new callers here while streams wind down.
    this.monitoring?.set("stopping");
    await this.source.stop();
    await this.kube?.stop();
    await this.reloading;
    this.ads.close();
    this.listener?.close();
    await new Promise<void>((resolve) => this.grpcServer.tryShutdown(() => resolve()));
    await this.monitoring?.close();
  }
}

function folderSource(opts: ControlPlaneOptions): ObjectSource {
  if (opts.configDir === undefined)
    throw new Error("ControlPlane: no object source (configDir, source or kube)");
  return new FolderSource(opts.configDir, {
    logger: opts.logger.child({ component: "manifests" }),
    validate: validateObject,
    watch: opts.watch !== false,
  });
}

function nodeNames(
  objects: { kind: string; metadata: { name: string } }[],
  result: TranslateResult,
): Set<string> {
  const names = new Set<string>();
  for (const o of objects) if (o.kind === "Node") names.add(o.metadata.name);
  for (const w of result.workloads) if (w.node) names.add(w.node);
  return names;
}
