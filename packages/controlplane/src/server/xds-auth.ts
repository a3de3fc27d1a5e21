// Kubernetes mode: a Delta ADS stream is served only once its bearer token authenticates, by the
// same authenticator as the CA (TokenReview). A stream without a valid token ends with the status
// of the refusal (UNAUTHENTICATED, or UNAVAILABLE while the API server cannot review tokens) and a
// message naming why; requests the client sent meanwhile wait in the stream's buffer.

import {
  type DeltaAdsServer,
  findCode,
  isSecretResourceName,
  L7_RESOURCE_TYPE_URL,
  type Logger,
  protos,
  type ResourceVisibility,
} from "@ambient/core";
import type * as grpc from "@grpc/grpc-js";
import { bearerOf, type Caller, type CallerAuthenticator } from "../ca/authenticator.js";
import { describeCaller } from "../ca/authorizer.js";
import { toGrpcStatus } from "../ca/errors.js";

type DeltaCall = Parameters<DeltaAdsServer["handleStream"]>[0];

export function addAuthenticatedDeltaAdsService(
  server: grpc.Server,
  ads: DeltaAdsServer,
  authenticator: CallerAuthenticator,
  logger: Logger,
): void {
  const log = logger.child({ component: "xds-auth" });
  server.addService(protos().adsService, {
    DeltaAggregatedResources: (call: DeltaCall) => {
      authenticator.authenticate(bearerOf(call.metadata)).then(
        (caller) => {
          if (call.cancelled) return;
          log.debug({ peer: call.getPeer(), caller: describeCaller(caller) }, "xDS stream authenticated");
          ads.handleStream(call, visibleTo(caller));
        },
        (err: unknown) => {
          const { code, message } = toGrpcStatus(err);
          log.warn({ code: findCode(err), peer: call.getPeer() }, `xDS stream refused: ${message}`);
          call.emit("error", { code, details: message });
        },
      );
    },
  });
}

/**
 * What a caller may receive: everything but the TLS Secrets of ingress gateways, which reach only
 * service accounts of the Secret's own namespace (istiod's SDS rule: a gateway reads the
 * certificates of its namespace). Other namespaces' proxies are told such a Secret does not exist.
 */
export function visibleTo(caller: Caller): ResourceVisibility {
  return (typeUrl, name) => {
    if (typeUrl !== L7_RESOURCE_TYPE_URL) return true;
    const secret = isSecretResourceName(name);
    if (!secret) return true;
    return caller.kind === "serviceaccount" && caller.namespace === secret.namespace;
  };
}
