// A control plane's TLS port (15012) as Kubernetes mode serves it, for the proxies' side of the
// contract: Delta ADS over a ResourceStore and a small IstioCertificateService on one grpc-js server
// with a serving certificate from a test root. It records what each caller sent (bearer token,
// ImpersonatedIdentity) and can refuse tokens, so tests see exactly what crossed the wire.

import {
  type AmbientError,
  type CertificateAuthority,
  DeltaAdsServer,
  type Logger,
  protos,
  type ResourceStore,
} from "@ambient/core";
import type { TestCa } from "@ambient/core/testing";
import * as grpc from "@grpc/grpc-js";

/** The names istiod's serving certificate carries (the contract's DNS SANs). */
export const ISTIOD_DNS_NAMES = [
  "istiod.istio-system.svc",
  "istiod.istio-system.svc.cluster.local",
  "istiod.istio-system",
  "istiod",
];

export interface CaCall {
  token: string | undefined;
  /** The ImpersonatedIdentity metadata, when the caller sent one. */
  impersonated: string | undefined;
  /** The SPIFFE ID of the certificate issued, if one was. */
  issued?: string;
}

export interface TlsControlPlane {
  address: string;
  /** Bearer tokens of the ADS streams opened, in order. */
  xdsTokens: (string | undefined)[];
  caCalls: CaCall[];
  stop(): Promise<void>;
}

export interface TlsControlPlaneOptions {
  /** "host:port" to bind. */
  address: string;
  /** Signs the serving certificate (the mesh root, or another one to test a refusal). */
  servingRoot: TestCa;
  /** DNS SANs of the serving certificate (default: istiod's). */
  dnsNames?: string[];
  store: ResourceStore;
  /** Signs workload certificates. */
  authority: CertificateAuthority;
  /** Tokens the server accepts on ADS and the CA; any when omitted. */
  acceptToken?: (token: string | undefined) => boolean;
  logger: Logger;
}

export async function startTlsControlPlane(o: TlsControlPlaneOptions): Promise<TlsControlPlane> {
  const leaf = await o.servingRoot.issueLeaf({ uris: [], dnsNames: o.dnsNames ?? ISTIOD_DNS_NAMES });
  const server = new grpc.Server();
  const ads = new DeltaAdsServer({ store: o.store, logger: o.logger });
  const xdsTokens: (string | undefined)[] = [];
  const caCalls: CaCall[] = [];
  const accepted = o.acceptToken ?? (() => true);

  server.addService(protos().adsService, {
    DeltaAggregatedResources: (call: grpc.ServerDuplexStream<unknown, unknown>) => {
      const token = bearer(call.metadata);
      xdsTokens.push(token);
      if (!accepted(token)) {
        call.emit("error", { code: grpc.status.UNAUTHENTICATED, details: `token ${token} is not accepted` });
        return;
      }
      ads.handleStream(call as never);
    },
  });
  server.addService(protos().caService, {
    CreateCertificate: (
      call: grpc.ServerUnaryCall<
        {
          csr: string;
          validityDuration: number;
          metadata?: { fields?: Record<string, { stringValue?: string }> };
        },
        { certChain: string[] }
      >,
      callback: grpc.sendUnaryData<{ certChain: string[] }>,
    ) => {
      const record: CaCall = {
        token: bearer(call.metadata),
        impersonated: call.request.metadata?.fields?.ImpersonatedIdentity?.stringValue,
      };
      caCalls.push(record);
      if (!accepted(record.token)) {
        callback({ code: grpc.status.UNAUTHENTICATED, details: `token ${record.token} is not accepted` });
        return;
      }
      o.authority
        .sign(call.request.csr, { ttlSeconds: call.request.validityDuration || 3600 })
        .then((signed) => {
          record.issued = signed.certChainPem[0];
          callback(null, { certChain: signed.certChainPem });
        })
        .catch((err: unknown) =>
          callback({ code: grpc.status.INVALID_ARGUMENT, details: (err as AmbientError).message }),
        );
    },
  });
  const credentials = grpc.ServerCredentials.createSsl(
    null,
    [{ cert_chain: Buffer.from(leaf.certChainPem.join("")), private_key: Buffer.from(leaf.privateKeyPem) }],
    false,
  );
  await new Promise<number>((resolve, reject) =>
    server.bindAsync(o.address, credentials, (err, port) => (err ? reject(err) : resolve(port))),
  );
  return {
    address: o.address,
    xdsTokens,
    caCalls,
    stop: async () => {
      ads.close();
      server.forceShutdown();
    },
  };
}

function bearer(metadata: grpc.Metadata): string | undefined {
  const value = metadata.get("authorization")[0];
  const text = typeof value === "string" ? value : value?.toString();
  return text?.startsWith("Bearer ") ? text.slice("Bearer ".length) : undefined;
}
