// The control plane's own certificate for its TLS port (istiod's DNS certificate): issued by the
// mesh CA for the `istiod` Service's names, so proxies verify it with the root they already hold
// (ConfigMap istio-ca-root-cert), and renewed before it expires. New connections get the renewed
// one at once; established ones keep theirs (TLS never re-checks a certificate mid-session).

import { createSecureContext, type SecureContext } from "node:tls";
import { Backoff, type CertificateAuthority, errorMessage, type Logger } from "@ambient/core";

/** The workload default (24 h), renewed at half-life as proxies renew theirs. */
export const SERVING_CERT_TTL_SECONDS = 24 * 3600;

export interface ServingCertificateOptions {
  ca: CertificateAuthority;
  dnsNames: readonly string[];
  ipAddresses: readonly string[];
  logger: Logger;
  /** Tests shorten it to watch a renewal happen. */
  ttlSeconds?: number;
}

export class ServingCertificate {
  private context!: SecureContext;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly backoff = new Backoff(1_000, 60_000);
  private readonly log: Logger;
  private readonly ttlSeconds: number;

  private constructor(private readonly o: ServingCertificateOptions) {
    this.log = o.logger.child({ component: "serving-cert" });
    this.ttlSeconds = o.ttlSeconds ?? SERVING_CERT_TTL_SECONDS;
  }

  /** Issues the first certificate (a failure here fails the start) and schedules its renewal. */
  static async start(o: ServingCertificateOptions): Promise<ServingCertificate> {
    const cert = new ServingCertificate(o);
    await cert.renew();
    return cert;
  }

  /** The context for the next connection. */
  get secureContext(): SecureContext {
    return this.context;
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private async renew(): Promise<void> {
    const issued = await this.o.ca.issueServingCertificate({
      dnsNames: this.o.dnsNames,
      ipAddresses: this.o.ipAddresses,
      ttlSeconds: this.ttlSeconds,
    });
    this.context = createSecureContext({
      key: issued.privateKeyPem,
      // node:tls serves the chain without the root: the peer has it.
      cert: issued.certChainPem.slice(0, -1).join(""),
      minVersion: "TLSv1.2",
    });
    this.backoff.reset();
    const lifetimeMs = issued.notAfter.getTime() - Date.now();
    this.log.info(
      {
        serial: issued.serial,
        notAfter: issued.notAfter.toISOString(),
        dns: this.o.dnsNames,
        ips: this.o.ipAddresses,
      },
      "serving certificate issued",
    );
    this.schedule(Math.max(1_000, lifetimeMs / 2));
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.renew().catch((err) => {
        // The current certificate stays valid until its expiry; keep trying well before that.
        this.log.error({ err: errorMessage(err) }, "cannot renew the serving certificate; retrying");
        this.schedule(this.backoff.next());
      });
    }, ms);
    this.timer.unref();
  }
}
