// Certificates for the identities of the pods on this node, as ztunnel's SecretManager keeps
// them: fetched from the CA when a pod arrives, verified before use, rotated at half life, and
// retried with backoff while the CA is down, keeping a still-valid certificate in use meanwhile.

import { EventEmitter } from "node:events";
import {
  AmbientError,
  Backoff,
  type CredentialsSource,
  createWorkloadCsr,
  describeCertificate,
  ErrorCode,
  errorMessage,
  findCode,
  type Logger,
  type SpiffeId,
  type WorkloadCertificate,
} from "@ambient/core";
import type { ChannelOptions } from "@grpc/grpc-js";
import { CaClient, CertificateErrorCode } from "./ca-client.js";
import { verifyIssuedChain } from "./verify-issued.js";

/** Istio's default workload certificate lifetime. */
export const DEFAULT_CERT_TTL_SECONDS = 24 * 3600;
/** DESIGN §5 (Istio's CA client): 0.5 s doubling to 150 s. */
export const DEFAULT_CERT_BACKOFF = { initialMs: 500, maxMs: 150_000 } as const;
// A refresh due in the past (clock skew, a CA that backdates a short-lived certificate by more
// than half its life) waits this long, so it cannot become a tight loop of CA requests.
const MIN_REFRESH_DELAY_MS = 1_000;
// setTimeout fires at once for delays above 2^31-1 ms (~24.8 days); a 90-day certificate's half
// life is longer, so long waits are taken in steps.
const MAX_TIMER_MS = 2 ** 31 - 1;

export interface CertificateManagerOptions {
  /** "host:port" of the CA (the control plane's gRPC port). */
  caAddress: string;
  /** The node's bootstrap token, read again for every request so a rotated token is picked up. */
  token: () => string | Promise<string>;
  trustDomain: string;
  ttlSeconds?: number;
  logger: Logger;
  /** The clock for validity and refresh times; timers still run on the real (or vitest's) clock. */
  now?: () => Date;
  backoff?: { initialMs: number; maxMs: number };
  /** Plaintext when omitted (local mode); a function is asked before every CA call. */
  credentials?: CredentialsSource;
  channelOptions?: ChannelOptions;
  /** Send ImpersonatedIdentity (default true; false: a waypoint in a pod asks for its own identity). */
  impersonate?: boolean;
  /**
   * Trust anchors for issued chains (cluster mode: the mesh root from the CA's config map). When
   * omitted, each chain is verified up to the root the CA itself returns, as the last element.
   */
  rootsPem?: readonly string[];
}

/** A workload certificate with the start of its validity, which the refresh time depends on. */
export interface ManagedCertificate extends WorkloadCertificate {
  notBefore: Date;
}

export type CertificateState = "available" | "pending" | "failed";

/** One identity for /config_dump; times are ISO strings. */
export interface CertificateStatus {
  identity: string;
  /** available: a valid certificate is in use (a refresh may be failing, see lastError). */
  state: CertificateState;
  serial?: string;
  notBefore?: string;
  notAfter?: string;
  lastError?: string;
  nextRefresh?: string;
  /** Every certificate of the chain in use, leaf first, root last (istioctl lists each). */
  chain?: ChainCertificate[];
}

/** One certificate of a chain, for /config_dump; times are ISO strings, the serial lowercase hex. */
interface ChainCertificate {
  type: "Leaf" | "Intermediate" | "Root";
  subject: string;
  serial: string;
  notBefore: string;
  notAfter: string;
}

// Described once per issued chain (parsing is ~150 µs a certificate), on the first config dump.
const chains = new WeakMap<ManagedCertificate, ChainCertificate[]>();

function chainOf(cert: ManagedCertificate): ChainCertificate[] {
  let chain = chains.get(cert);
  if (!chain) {
    const last = cert.certChainPem.length - 1;
    chain = cert.certChainPem.map((pem, i) => {
      const d = describeCertificate(pem);
      return {
        // The CA returns leaf first and root last; a chain of one is a leaf the CA signed as root.
        type: i === 0 ? "Leaf" : i === last ? "Root" : "Intermediate",
        subject: d.subject,
        serial: d.serial,
        notBefore: d.notBefore.toISOString(),
        notAfter: d.notAfter.toISOString(),
      };
    });
    chains.set(cert, chain);
  }
  return chain;
}

export interface CertificateManagerEvents {
  /** A new certificate is in use for `id` (the first one too); TLS contexts should switch to it. */
  rotated: [id: SpiffeId, cert: ManagedCertificate];
  /** A request failed; it is retried after `retryInMs`. */
  fetchFailed: [id: SpiffeId, error: AmbientError, retryInMs: number];
}

interface Waiter {
  resolve(cert: ManagedCertificate): void;
  reject(err: Error): void;
}

interface Entry {
  readonly id: SpiffeId;
  readonly backoff: Backoff;
  readonly waiters: Set<Waiter>;
  cert?: ManagedCertificate;
  lastError?: string;
  nextRefresh?: Date;
  timer?: NodeJS.Timeout;
  fetching: boolean;
  /** False once dropped: a request still in flight for it is then discarded. */
  active: boolean;
}

export class CertificateManager extends EventEmitter<CertificateManagerEvents> {
  private readonly entries = new Map<string, Entry>();
  private readonly ca: CaClient;
  private readonly logger: Logger;
  private readonly now: () => Date;
  private readonly ttlSeconds: number;
  private readonly backoffConfig: { initialMs: number; maxMs: number };
  private closed = false;

  constructor(private readonly opts: CertificateManagerOptions) {
    super();
    this.logger = opts.logger.child({ component: "cert-manager" });
    this.now = opts.now ?? (() => new Date());
    this.ttlSeconds = opts.ttlSeconds ?? DEFAULT_CERT_TTL_SECONDS;
    this.backoffConfig = opts.backoff ?? DEFAULT_CERT_BACKOFF;
    this.ca = new CaClient(opts.caAddress, {
      ...(opts.credentials ? { credentials: opts.credentials } : {}),
      ...(opts.impersonate === false ? { impersonate: false } : {}),
      // grpc-js backs off reconnecting on its own (up to 120 s) and fails calls fast meanwhile;
      // capping it at our maximum keeps a recovered CA from waiting on a stale channel backoff.
      channelOptions: {
        "grpc.initial_reconnect_backoff_ms": this.backoffConfig.initialMs,
        "grpc.max_reconnect_backoff_ms": this.backoffConfig.maxMs,
        ...opts.channelOptions,
      },
    });
  }

  /** Makes `ids` the set of identities kept: fetches new ones now, drops the others. */
  setIdentities(ids: Iterable<SpiffeId>): void {
    if (this.closed) return;
    const wanted = new Map<string, SpiffeId>();
    for (const id of ids) wanted.set(id.toString(), id);
    for (const [key, entry] of this.entries) {
      if (!wanted.has(key)) this.drop(entry, `identity ${key} is no longer on this node`);
    }
    for (const [key, id] of wanted) {
      if (this.entries.has(key)) continue;
      const entry: Entry = {
        id,
        backoff: new Backoff(this.backoffConfig.initialMs, this.backoffConfig.maxMs),
        waiters: new Set(),
        fetching: false,
        active: true,
      };
      this.entries.set(key, entry);
      void this.fetch(entry);
    }
  }

  /** The certificate in use for `id`, if it holds one that is valid now. */
  get(id: SpiffeId | string): ManagedCertificate | undefined {
    const entry = this.entries.get(id.toString());
    return entry && this.valid(entry);
  }

  /** Roots to trust for peers: the configured anchors and the root of every certificate held. */
  rootsPem(): string[] {
    const roots = new Set(this.opts.rootsPem ?? []);
    for (const entry of this.entries.values()) {
      const root = entry.cert?.certChainPem.at(-1);
      if (root && this.valid(entry)) roots.add(root);
    }
    return [...roots];
  }

  /** True when every one of `ids` is managed and has a valid certificate. */
  ready(ids: Iterable<SpiffeId>): boolean {
    for (const id of ids) if (!this.get(id)) return false;
    return true;
  }

  /** True when every managed identity has a valid certificate. */
  get allReady(): boolean {
    for (const entry of this.entries.values()) if (!this.valid(entry)) return false;
    return true;
  }

  /**
   * Resolves with a valid certificate for `id` once there is one; waits through failed attempts.
   * Rejects when `id` is not managed, is dropped, the manager closes, or `signal` aborts.
   */
  whenReady(id: SpiffeId, signal?: AbortSignal): Promise<ManagedCertificate> {
    const entry = this.entries.get(id.toString());
    if (!entry) {
      return Promise.reject(
        new AmbientError(CertificateErrorCode.CERT_NOT_MANAGED, `no certificate is kept for ${id}`),
      );
    }
    const cert = this.valid(entry);
    if (cert) return Promise.resolve(cert);
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        entry.waiters.delete(waiter);
        reject(signal?.reason);
      };
      const waiter: Waiter = {
        resolve: (c) => {
          signal?.removeEventListener("abort", onAbort);
          resolve(c);
        },
        reject: (e) => {
          signal?.removeEventListener("abort", onAbort);
          reject(e);
        },
      };
      entry.waiters.add(waiter);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** Per identity, sorted, for /config_dump and `ambientctl ztunnel-config certificates`. */
  snapshot(): CertificateStatus[] {
    return [...this.entries.keys()].sort().map((key) => {
      const entry = this.entries.get(key)!;
      const cert = this.valid(entry);
      const out: CertificateStatus = {
        identity: key,
        state: cert ? "available" : entry.lastError !== undefined ? "failed" : "pending",
      };
      if (cert) {
        out.serial = cert.serial;
        out.notBefore = cert.notBefore.toISOString();
        out.notAfter = cert.notAfter.toISOString();
        out.chain = chainOf(cert);
      }
      if (entry.lastError !== undefined) out.lastError = entry.lastError;
      if (entry.nextRefresh) out.nextRefresh = entry.nextRefresh.toISOString();
      return out;
    });
  }

  /** Cancels every timer and the CA channel; waiters are rejected. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const entry of this.entries.values()) this.drop(entry, "the certificate manager is closed");
    this.ca.close();
  }

  // ---- one identity's cycle: fetch → install → refresh at half life, or fail → back off ----

  private async fetch(entry: Entry): Promise<void> {
    if (entry.fetching || !entry.active) return;
    entry.fetching = true;
    clearTimeout(entry.timer);
    entry.timer = undefined;
    entry.nextRefresh = undefined;
    try {
      const cert = await this.request(entry.id);
      if (entry.active) this.install(entry, cert);
    } catch (err) {
      if (entry.active) this.failed(entry, asAmbientError(err));
    } finally {
      entry.fetching = false;
    }
  }

  private async request(id: SpiffeId): Promise<ManagedCertificate> {
    // The CA would refuse it too, but only after a round trip and with a less direct message.
    if (id.trustDomain !== this.opts.trustDomain) {
      throw new AmbientError(
        ErrorCode.CERT_WRONG_TRUST_DOMAIN,
        `${id} is not in trust domain "${this.opts.trustDomain}"; its CA cannot sign it`,
      );
    }
    const { csrPem, privateKeyPem } = await createWorkloadCsr(id);
    let token: string;
    try {
      token = await this.opts.token();
    } catch (err) {
      // A typed reader's error (AMB_TOKEN_UNREADABLE, naming the file) says it best as it is.
      if (findCode(err)?.startsWith("AMB_")) throw err;
      throw new AmbientError(
        CertificateErrorCode.CA_REQUEST_FAILED,
        `cannot read the node token: ${errorMessage(err)}`,
        { cause: err },
      );
    }
    const chain = await this.ca.createCertificate(id, csrPem, this.ttlSeconds, token);
    const verified = verifyIssuedChain(id, chain, privateKeyPem, {
      trustDomain: this.opts.trustDomain,
      now: this.now(),
      ...(this.opts.rootsPem ? { rootsPem: this.opts.rootsPem } : {}),
    });
    return { identity: id, certChainPem: chain, privateKeyPem, ...verified };
  }

  private install(entry: Entry, cert: ManagedCertificate): void {
    const recovered = entry.lastError !== undefined;
    entry.cert = cert;
    entry.lastError = undefined;
    entry.backoff.reset();
    const lifetime = cert.notAfter.getTime() - cert.notBefore.getTime();
    const halfLife = cert.notBefore.getTime() + lifetime / 2;
    const refreshAt = new Date(Math.max(halfLife, this.now().getTime() + MIN_REFRESH_DELAY_MS));
    this.schedule(entry, refreshAt);
    this.logger.info(
      {
        identity: entry.id.toString(),
        serial: cert.serial,
        notAfter: cert.notAfter.toISOString(),
        nextRefresh: refreshAt.toISOString(),
        ...(recovered ? { recovered } : {}),
      },
      "workload certificate obtained",
    );
    for (const waiter of entry.waiters) waiter.resolve(cert);
    entry.waiters.clear();
    this.emit("rotated", entry.id, cert);
  }

  private failed(entry: Entry, error: AmbientError): void {
    entry.lastError = error.message;
    const delayMs = entry.backoff.next();
    this.schedule(entry, new Date(this.now().getTime() + delayMs));
    const inUse = this.valid(entry);
    this.logger.warn(
      {
        identity: entry.id.toString(),
        code: findCode(error),
        retryInMs: delayMs,
        ...(inUse ? { keeping: inUse.serial, notAfter: inUse.notAfter.toISOString() } : {}),
      },
      `certificate request failed: ${error.message}`,
    );
    this.emit("fetchFailed", entry.id, error, delayMs);
  }

  private schedule(entry: Entry, at: Date): void {
    clearTimeout(entry.timer);
    entry.nextRefresh = at;
    const delay = Math.max(0, at.getTime() - this.now().getTime());
    const step = Math.min(delay, MAX_TIMER_MS);
    entry.timer = setTimeout(() => {
      entry.timer = undefined;
      if (step < delay) this.schedule(entry, at);
      else void this.fetch(entry);
    }, step);
    // Certificates alone never keep the process alive; the listeners that use them do.
    entry.timer.unref?.();
  }

  private drop(entry: Entry, reason: string): void {
    entry.active = false;
    clearTimeout(entry.timer);
    entry.timer = undefined;
    this.entries.delete(entry.id.toString());
    const error = new AmbientError(CertificateErrorCode.CERT_MANAGER_CLOSED, reason);
    for (const waiter of entry.waiters) waiter.reject(error);
    entry.waiters.clear();
  }

  private valid(entry: Entry): ManagedCertificate | undefined {
    const cert = entry.cert;
    if (!cert) return undefined;
    const now = this.now().getTime();
    return now >= cert.notBefore.getTime() && now < cert.notAfter.getTime() ? cert : undefined;
  }
}

/** Our typed errors pass through; anything else (a token file that cannot be read) is wrapped. */
function asAmbientError(err: unknown): AmbientError {
  if (err instanceof Error && findCode(err)?.startsWith("AMB_")) return err as AmbientError;
  return new AmbientError(CertificateErrorCode.CA_REQUEST_FAILED, errorMessage(err), { cause: err });
}
