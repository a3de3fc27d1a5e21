// The VirtualService as the control plane hands it over: plain parsed Kubernetes YAML following
// Istio's networking.istio.io/v1 reference, already schema-validated. Field names are Istio's
// camelCase JSON names; everything optional that Istio leaves optional.

import { AmbientError, ErrorCode } from "@ambient/core";

export interface StringMatch {
  exact?: string;
  prefix?: string;
  regex?: string;
}

/** Istio's Percent: a double in [0, 100]. */
export interface Percent {
  value?: number;
}

export interface Destination {
  host: string;
  subset?: string;
  port?: { number?: number };
}

export interface HeaderOperations {
  set?: Record<string, string>;
  add?: Record<string, string>;
  remove?: string[];
}

export interface HeadersSpec {
  request?: HeaderOperations;
  response?: HeaderOperations;
}

export interface HttpMatchRequest {
  name?: string;
  uri?: StringMatch;
  scheme?: StringMatch;
  method?: StringMatch;
  authority?: StringMatch;
  headers?: Record<string, StringMatch>;
  withoutHeaders?: Record<string, StringMatch>;
  queryParams?: Record<string, StringMatch>;
  ignoreUriCase?: boolean;
  port?: number;
  sourceLabels?: Record<string, string>;
  sourceNamespace?: string;
  gateways?: string[];
}

export interface HttpRouteDestination {
  destination: Destination;
  weight?: number;
  headers?: HeadersSpec;
}

export interface HttpRedirect {
  uri?: string;
  authority?: string;
  port?: number;
  derivePort?: "FROM_PROTOCOL_DEFAULT" | "FROM_REQUEST_PORT";
  scheme?: string;
  redirectCode?: number;
}

export interface HttpDirectResponse {
  status: number;
  /** `bytes` is base64, as protobuf JSON writes bytes fields. */
  body?: { string?: string; bytes?: string };
}

export interface HttpRewrite {
  uri?: string;
  authority?: string;
  uriRegexRewrite?: { match?: string; rewrite?: string };
}

export interface HttpRetry {
  attempts?: number;
  perTryTimeout?: string;
  retryOn?: string;
  retryRemoteLocalities?: boolean;
}

export interface HttpFaultInjection {
  delay?: { fixedDelay?: string; percentage?: Percent /** deprecated integer percent */; percent?: number };
  abort?: { httpStatus?: number; grpcStatus?: string | number; percentage?: Percent };
}

export interface CorsPolicySpec {
  allowOrigins?: StringMatch[];
  /** Deprecated exact-origin list, still honoured when `allowOrigins` is absent. */
  allowOrigin?: string[];
  allowMethods?: string[];
  allowHeaders?: string[];
  exposeHeaders?: string[];
  maxAge?: string;
  allowCredentials?: boolean;
  allowPrivateNetwork?: boolean;
  unmatchedPreflights?: "UNSPECIFIED" | "FORWARD" | "IGNORE";
}

export interface HttpMirrorPolicy {
  destination: Destination;
  percentage?: Percent;
}

export interface HttpRoute {
  name?: string;
  match?: HttpMatchRequest[];
  route?: HttpRouteDestination[];
  redirect?: HttpRedirect;
  directResponse?: HttpDirectResponse;
  delegate?: { name?: string; namespace?: string };
  rewrite?: HttpRewrite;
  timeout?: string;
  retries?: HttpRetry;
  fault?: HttpFaultInjection;
  mirror?: Destination;
  /** Deprecated integer form of `mirrorPercentage`. */
  mirrorPercent?: number;
  mirrorPercentage?: Percent;
  mirrors?: HttpMirrorPolicy[];
  corsPolicy?: CorsPolicySpec;
  headers?: HeadersSpec;
}

export interface VirtualServiceSpec {
  hosts?: string[];
  gateways?: string[];
  exportTo?: string[];
  http?: HttpRoute[];
  tcp?: unknown[];
  tls?: unknown[];
}

export interface VsObject {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace?: string; creationTimestamp?: string };
  spec: VirtualServiceSpec;
}

/**
 * Collects every invalid field while compiling, so one bad VirtualService reports all of its
 * problems at once (with `namespace/name` and the field path) instead of only the first.
 */
export class ConfigProblems {
  readonly list: { object: string; path: string; message: string }[] = [];

  add(object: string, path: string, message: string): void {
    this.list.push({ object, path, message });
  }

  throwIfAny(): void {
    if (this.list.length === 0) return;
    const lines = this.list.map((p) => `${p.object}: ${p.path}: ${p.message}`);
    throw new AmbientError(ErrorCode.OBJECT_INVALID, `invalid VirtualService:\n  ${lines.join("\n  ")}`, {
      details: { problems: this.list },
    });
  }
}
