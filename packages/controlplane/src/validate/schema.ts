// Structural validation of Istio and Gateway API objects against their published CRD schemas,
// through the generated @kubernetes-models classes (AJV underneath). AJV's errors are turned into
// our dotted paths and plain sentences; its oneOf bookkeeping is folded into one message.

import { at, isRecord, type Json, type Problems } from "@ambient/kube";
import { Gateway as GatewayV1 } from "@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/Gateway";
import { GRPCRoute as GrpcRouteV1 } from "@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/GRPCRoute";
import { HTTPRoute as HttpRouteV1 } from "@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/HTTPRoute";
import { TCPRoute as TcpRouteV1alpha2 } from "@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1alpha2/TCPRoute";
import { TLSRoute as TlsRouteV1alpha2 } from "@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1alpha2/TLSRoute";
import { Gateway as GatewayV1beta1 } from "@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1beta1/Gateway";
import { HTTPRoute as HttpRouteV1beta1 } from "@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1beta1/HTTPRoute";
import { DestinationRule as DestinationRuleV1 } from "@kubernetes-models/istio/networking.istio.io/v1/DestinationRule";
import { Gateway as IstioGatewayV1 } from "@kubernetes-models/istio/networking.istio.io/v1/Gateway";
import { ServiceEntry as ServiceEntryV1 } from "@kubernetes-models/istio/networking.istio.io/v1/ServiceEntry";
import { VirtualService as VirtualServiceV1 } from "@kubernetes-models/istio/networking.istio.io/v1/VirtualService";
import { WorkloadEntry as WorkloadEntryV1 } from "@kubernetes-models/istio/networking.istio.io/v1/WorkloadEntry";
import { DestinationRule as DestinationRuleV1alpha3 } from "@kubernetes-models/istio/networking.istio.io/v1alpha3/DestinationRule";
import { Gateway as IstioGatewayV1alpha3 } from "@kubernetes-models/istio/networking.istio.io/v1alpha3/Gateway";
import { ServiceEntry as ServiceEntryV1alpha3 } from "@kubernetes-models/istio/networking.istio.io/v1alpha3/ServiceEntry";
import { VirtualService as VirtualServiceV1alpha3 } from "@kubernetes-models/istio/networking.istio.io/v1alpha3/VirtualService";
import { WorkloadEntry as WorkloadEntryV1alpha3 } from "@kubernetes-models/istio/networking.istio.io/v1alpha3/WorkloadEntry";
import { DestinationRule as DestinationRuleV1beta1 } from "@kubernetes-models/istio/networking.istio.io/v1beta1/DestinationRule";
import { Gateway as IstioGatewayV1beta1 } from "@kubernetes-models/istio/networking.istio.io/v1beta1/Gateway";
import { ServiceEntry as ServiceEntryV1beta1 } from "@kubernetes-models/istio/networking.istio.io/v1beta1/ServiceEntry";
import { VirtualService as VirtualServiceV1beta1 } from "@kubernetes-models/istio/networking.istio.io/v1beta1/VirtualService";
import { WorkloadEntry as WorkloadEntryV1beta1 } from "@kubernetes-models/istio/networking.istio.io/v1beta1/WorkloadEntry";
import { AuthorizationPolicy as AuthorizationPolicyV1 } from "@kubernetes-models/istio/security.istio.io/v1/AuthorizationPolicy";
import { PeerAuthentication as PeerAuthenticationV1 } from "@kubernetes-models/istio/security.istio.io/v1/PeerAuthentication";
import { RequestAuthentication as RequestAuthenticationV1 } from "@kubernetes-models/istio/security.istio.io/v1/RequestAuthentication";
import { AuthorizationPolicy as AuthorizationPolicyV1beta1 } from "@kubernetes-models/istio/security.istio.io/v1beta1/AuthorizationPolicy";
import { PeerAuthentication as PeerAuthenticationV1beta1 } from "@kubernetes-models/istio/security.istio.io/v1beta1/PeerAuthentication";
import { RequestAuthentication as RequestAuthenticationV1beta1 } from "@kubernetes-models/istio/security.istio.io/v1beta1/RequestAuthentication";

interface SchemaModel {
  validate(): void;
}
// The generated constructors are typed for well-formed input; we hand them unvalidated JSON.
type ModelClass = new (data: never) => SchemaModel;

const MODELS: Record<string, ModelClass> = {
  "gateway.networking.k8s.io/v1/Gateway": GatewayV1,
  "gateway.networking.k8s.io/v1beta1/Gateway": GatewayV1beta1,
  "gateway.networking.k8s.io/v1/HTTPRoute": HttpRouteV1,
  "gateway.networking.k8s.io/v1beta1/HTTPRoute": HttpRouteV1beta1,
  "gateway.networking.k8s.io/v1/GRPCRoute": GrpcRouteV1,
  "gateway.networking.k8s.io/v1alpha2/TLSRoute": TlsRouteV1alpha2,
  "gateway.networking.k8s.io/v1alpha2/TCPRoute": TcpRouteV1alpha2,
  "security.istio.io/v1/AuthorizationPolicy": AuthorizationPolicyV1,
  "security.istio.io/v1beta1/AuthorizationPolicy": AuthorizationPolicyV1beta1,
  "security.istio.io/v1/PeerAuthentication": PeerAuthenticationV1,
  "security.istio.io/v1beta1/PeerAuthentication": PeerAuthenticationV1beta1,
  "security.istio.io/v1/RequestAuthentication": RequestAuthenticationV1,
  "security.istio.io/v1beta1/RequestAuthentication": RequestAuthenticationV1beta1,
  "networking.istio.io/v1/VirtualService": VirtualServiceV1,
  "networking.istio.io/v1beta1/VirtualService": VirtualServiceV1beta1,
  "networking.istio.io/v1alpha3/VirtualService": VirtualServiceV1alpha3,
  "networking.istio.io/v1/DestinationRule": DestinationRuleV1,
  "networking.istio.io/v1beta1/DestinationRule": DestinationRuleV1beta1,
  "networking.istio.io/v1alpha3/DestinationRule": DestinationRuleV1alpha3,
  "networking.istio.io/v1/ServiceEntry": ServiceEntryV1,
  "networking.istio.io/v1beta1/ServiceEntry": ServiceEntryV1beta1,
  "networking.istio.io/v1alpha3/ServiceEntry": ServiceEntryV1alpha3,
  "networking.istio.io/v1/Gateway": IstioGatewayV1,
  "networking.istio.io/v1beta1/Gateway": IstioGatewayV1beta1,
  "networking.istio.io/v1alpha3/Gateway": IstioGatewayV1alpha3,
  "networking.istio.io/v1/WorkloadEntry": WorkloadEntryV1,
  "networking.istio.io/v1beta1/WorkloadEntry": WorkloadEntryV1beta1,
  "networking.istio.io/v1alpha3/WorkloadEntry": WorkloadEntryV1alpha3,
};

interface AjvError {
  instancePath: string;
  keyword: string;
  message?: string;
  params: Record<string, unknown>;
}

/** Validates `obj` against its CRD schema, adding one problem per schema violation. */
export function checkSchema(obj: Json, problems: Problems): void {
  const Model = MODELS[`${String(obj.apiVersion)}/${String(obj.kind)}`];
  if (!Model) return;
  let errors: AjvError[];
  try {
    new Model(obj as never).validate();
    return;
  } catch (err) {
    const list = (err as { errors?: unknown }).errors;
    if (!Array.isArray(list)) {
      problems.add("", `schema validation failed: ${(err as Error).message}`);
      return;
    }
    errors = list as AjvError[];
  }

  // Istio's CRDs express protobuf oneofs as `oneOf` over `required` branches guarded by a `not`.
  // AJV reports each failed branch too; keep only the summary at paths that have one.
  const oneOfPaths = new Set(errors.filter((e) => e.keyword === "oneOf").map((e) => e.instancePath));
  for (const e of errors) {
    if (oneOfPaths.has(e.instancePath) && ["not", "required", "anyOf"].includes(e.keyword)) continue;
    // Metadata has its own, more precise checks (structure.ts).
    if (e.instancePath === "/metadata" || e.instancePath.startsWith("/metadata/")) continue;
    const { path, message } = describe(obj, e);
    problems.add(path, message);
  }
}

// YAML words rather than JSON Schema's: a manifest author writes mappings and lists.
const TYPE_NAMES: Record<string, string> = {
  object: "a mapping",
  array: "a list",
  string: "a string",
  integer: "an integer",
  number: "a number",
  boolean: "true or false",
};

function describe(obj: Json, e: AjvError): { path: string; message: string } {
  const path = toPath(obj, e.instancePath);
  switch (e.keyword) {
    case "required":
      return { path: at(path, String(e.params.missingProperty)), message: "is required" };
    case "additionalProperties":
      return { path: at(path, String(e.params.additionalProperty)), message: "is not a known field" };
    case "enum": {
      const allowed = (e.params.allowedValues as unknown[] | undefined)?.map(String).join(", ");
      return {
        path,
        message: allowed ? `must be one of ${allowed}` : (e.message ?? "is not an allowed value"),
      };
    }
    case "oneOf": {
      if (Array.isArray(e.params.passingSchemas)) {
        const value = valueAt(obj, e.instancePath);
        const fields = isRecord(value) ? Object.keys(value).join(", ") : "";
        return {
          path,
          message: `sets more than one of a group of mutually exclusive fields${fields ? ` (found: ${fields})` : ""}`,
        };
      }
      return { path, message: "does not match any of the allowed forms of this field" };
    }
    case "type": {
      const type = String(e.params.type);
      return { path, message: `must be ${TYPE_NAMES[type] ?? type}` };
    }
    default:
      return { path, message: e.message ?? `fails schema rule ${e.keyword}` };
  }
}

/** `/spec/rules/0/from` → `spec.rules[0].from`, using the object to tell indices from map keys. */
function toPath(obj: Json, pointer: string): string {
  let path = "";
  let cursor: unknown = obj;
  for (const raw of pointer.split("/").slice(1)) {
    const segment = raw.replace(/~1/g, "/").replace(/~0/g, "~");
    if (Array.isArray(cursor) && /^[0-9]+$/.test(segment)) {
      path = at(path, Number(segment));
      cursor = cursor[Number(segment)];
    } else {
      path = at(path, segment);
      cursor = isRecord(cursor) ? cursor[segment] : undefined;
    }
  }
  return path;
}

function valueAt(obj: Json, pointer: string): unknown {
  let cursor: unknown = obj;
  for (const raw of pointer.split("/").slice(1)) {
    const segment = raw.replace(/~1/g, "/").replace(/~0/g, "~");
    if (Array.isArray(cursor)) cursor = cursor[Number(segment)];
    else cursor = isRecord(cursor) ? cursor[segment] : undefined;
  }
  return cursor;
}
