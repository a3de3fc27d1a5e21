// validateObject: the gate every manifest or API object passes before translation. It runs the
// structural checks, the CRD schema (Istio, Gateway API) and Istio's own semantic rules, and
// reports every problem it finds, each with the dotted path of the field.

import {
  checkTypeAndMeta,
  isRecord,
  type Json,
  type ObjectValidator,
  Problems,
  type ValidationResult,
  withDefaultNamespace,
} from "@ambient/kube";
import { checkPeerAuthentication, checkRequestAuthentication } from "./authentication.js";
import { checkAuthorizationPolicy } from "./authorization-policy.js";
import { checkNode, checkPod, checkService } from "./core-kinds.js";
import { checkDestinationRule } from "./destination-rule.js";
import { checkGateway } from "./gateway.js";
import { checkIstioGateway, checkSecret } from "./ingress.js";
import { checkGrpcRoute, checkHttpRoute } from "./routes.js";
import { checkSchema } from "./schema.js";
import { checkServiceEntry, checkWorkloadEntry } from "./service-entry.js";
import { checkVirtualService } from "./virtual-service.js";

const SEMANTIC: Record<string, (obj: Json, problems: Problems) => void> = {
  "/Pod": checkPod,
  "/Service": checkService,
  "/Node": checkNode,
  "/Secret": checkSecret,
  "gateway.networking.k8s.io/Gateway": checkGateway,
  "gateway.networking.k8s.io/HTTPRoute": checkHttpRoute,
  "gateway.networking.k8s.io/GRPCRoute": checkGrpcRoute,
  "security.istio.io/AuthorizationPolicy": checkAuthorizationPolicy,
  "security.istio.io/PeerAuthentication": checkPeerAuthentication,
  "security.istio.io/RequestAuthentication": checkRequestAuthentication,
  "networking.istio.io/VirtualService": checkVirtualService,
  "networking.istio.io/DestinationRule": checkDestinationRule,
  "networking.istio.io/ServiceEntry": checkServiceEntry,
  "networking.istio.io/Gateway": checkIstioGateway,
  "networking.istio.io/WorkloadEntry": checkWorkloadEntry,
};

/**
 * Validates one parsed document. On success the object is returned with `metadata.namespace`
 * filled in for namespaced kinds ("default" when absent), so later stages never guess.
 */
export const validateObject: ObjectValidator = (obj: unknown): ValidationResult => {
  const problems = new Problems();
  if (!isRecord(obj)) {
    problems.add("", "must be a mapping with apiVersion, kind and metadata (a Kubernetes object)");
    return { ok: false, problems: problems.list };
  }

  const info = checkTypeAndMeta(obj, problems);
  if (!info) return { ok: false, problems: problems.list };

  if (obj.spec !== undefined && obj.spec !== null && !isRecord(obj.spec)) {
    problems.add("spec", "must be a mapping");
  } else {
    // Where the schema and Istio's rules flag the same field, keep the semantic message: it says
    // what Istio expects ("is required (the service this rule applies to)"), not just the shape.
    const schema = new Problems();
    const semantic = new Problems();
    checkSchema(obj, schema);
    SEMANTIC[`${info.group}/${info.kind}`]?.(obj, semantic);
    const semanticPaths = new Set(semantic.list.map((p) => p.path));
    for (const p of [...schema.list.filter((p) => !semanticPaths.has(p.path)), ...semantic.list]) {
      problems.add(p.path, p.message, p.code);
    }
  }
  if (problems.size > 0) return { ok: false, problems: problems.list };

  return withDefaultNamespace(obj as never, info.namespaced);
};
