// CRDs for the Istio and Gateway API kinds our components read, with open schemas (the server
// does not enforce schemas anyway) and the versions, scopes and short names of the upstream
// CRDs, so `startTestApiServer({ objects: istioCrds() })` serves them as a cluster with Istio does.

import type { KubeObject } from "./store.js";

interface KindSpec {
  group: string;
  kind: string;
  plural: string;
  versions: string[];
  shortNames?: string[];
  scope?: "Namespaced" | "Cluster";
  categories?: string[];
  /** additionalPrinterColumns, as the upstream CRD has them (what `kubectl get` prints). */
  columns?: { name: string; type: string; jsonPath: string; priority?: number }[];
}

// Upstream lists Age among its columns: a CRD's columns replace kubectl's defaults.
const AGE = { name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp" };

// Istio 1.2x serves v1 (stored), v1beta1 and, for networking, v1alpha3; Gateway API v1.x serves v1
// (and v1beta1 for the older kinds).
const ISTIO_KINDS: KindSpec[] = [
  {
    group: "security.istio.io",
    kind: "AuthorizationPolicy",
    plural: "authorizationpolicies",
    versions: ["v1", "v1beta1"],
    shortNames: ["ap"],
  },
  {
    group: "security.istio.io",
    kind: "PeerAuthentication",
    plural: "peerauthentications",
    versions: ["v1", "v1beta1"],
    shortNames: ["pa"],
  },
  {
    group: "security.istio.io",
    kind: "RequestAuthentication",
    plural: "requestauthentications",
    versions: ["v1", "v1beta1"],
    shortNames: ["ra"],
  },
  {
    group: "networking.istio.io",
    kind: "VirtualService",
    plural: "virtualservices",
    versions: ["v1", "v1beta1", "v1alpha3"],
    shortNames: ["vs"],
  },
  {
    group: "networking.istio.io",
    kind: "DestinationRule",
    plural: "destinationrules",
    versions: ["v1", "v1beta1", "v1alpha3"],
    shortNames: ["dr"],
  },
  {
    group: "networking.istio.io",
    kind: "ServiceEntry",
    plural: "serviceentries",
    versions: ["v1", "v1beta1", "v1alpha3"],
    shortNames: ["se"],
    categories: ["istio-io", "networking-istio-io"],
    columns: [
      { name: "Hosts", type: "string", jsonPath: ".spec.hosts" },
      { name: "Location", type: "string", jsonPath: ".spec.location" },
      { name: "Resolution", type: "string", jsonPath: ".spec.resolution" },
      AGE,
    ],
  },
  {
    group: "networking.istio.io",
    kind: "WorkloadEntry",
    plural: "workloadentries",
    versions: ["v1", "v1beta1", "v1alpha3"],
    shortNames: ["we"],
    categories: ["istio-io", "networking-istio-io"],
    columns: [AGE, { name: "Address", type: "string", jsonPath: ".spec.address" }],
  },
  {
    // Istio's own Gateway (ingress servers), not the Gateway API's; `kubectl get gateway` still
    // means the Gateway API's (its group sorts first), `gw` this one, as on a cluster with Istio.
    group: "networking.istio.io",
    kind: "Gateway",
    plural: "gateways",
    versions: ["v1", "v1beta1", "v1alpha3"],
    shortNames: ["gw"],
    categories: ["istio-io", "networking-istio-io"],
  },
  {
    group: "gateway.networking.k8s.io",
    kind: "GatewayClass",
    plural: "gatewayclasses",
    versions: ["v1", "v1beta1"],
    shortNames: ["gc"],
    scope: "Cluster",
    categories: ["gateway-api"],
    columns: [
      { name: "Controller", type: "string", jsonPath: ".spec.controllerName" },
      { name: "Accepted", type: "string", jsonPath: '.status.conditions[?(@.type=="Accepted")].status' },
      AGE,
      { name: "Description", type: "string", jsonPath: ".spec.description", priority: 1 },
    ],
  },
  {
    group: "gateway.networking.k8s.io",
    kind: "Gateway",
    plural: "gateways",
    versions: ["v1", "v1beta1"],
    shortNames: ["gtw"],
    categories: ["gateway-api"],
    columns: [
      { name: "Class", type: "string", jsonPath: ".spec.gatewayClassName" },
      { name: "Address", type: "string", jsonPath: ".status.addresses[*].value" },
      { name: "Programmed", type: "string", jsonPath: '.status.conditions[?(@.type=="Programmed")].status' },
      AGE,
    ],
  },
  {
    group: "gateway.networking.k8s.io",
    kind: "HTTPRoute",
    plural: "httproutes",
    versions: ["v1", "v1beta1"],
    categories: ["gateway-api"],
    columns: [{ name: "Hostnames", type: "string", jsonPath: ".spec.hostnames" }, AGE],
  },
  {
    group: "gateway.networking.k8s.io",
    kind: "TLSRoute",
    plural: "tlsroutes",
    versions: ["v1alpha2"],
    categories: ["gateway-api"],
    columns: [{ name: "Hostnames", type: "string", jsonPath: ".spec.hostnames" }, AGE],
  },
  {
    group: "gateway.networking.k8s.io",
    kind: "TCPRoute",
    plural: "tcproutes",
    versions: ["v1alpha2"],
    categories: ["gateway-api"],
    columns: [AGE],
  },
  {
    group: "gateway.networking.k8s.io",
    kind: "GRPCRoute",
    plural: "grpcroutes",
    versions: ["v1"],
    categories: ["gateway-api"],
    columns: [{ name: "Hostnames", type: "string", jsonPath: ".spec.hostnames" }, AGE],
  },
];

export function istioCrds(): KubeObject[] {
  return ISTIO_KINDS.map((k) => ({
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: `${k.plural}.${k.group}` },
    spec: {
      group: k.group,
      scope: k.scope ?? "Namespaced",
      names: {
        plural: k.plural,
        singular: k.kind.toLowerCase(),
        kind: k.kind,
        listKind: `${k.kind}List`,
        ...(k.shortNames ? { shortNames: k.shortNames } : {}),
        categories: k.categories ?? ["istio-io", k.group.replace(/\./g, "-")],
      },
      versions: k.versions.map((name, i) => ({
        name,
        served: true,
        storage: i === 0,
        subresources: { status: {} },
        ...(k.columns ? { additionalPrinterColumns: k.columns } : {}),
        schema: { openAPIV3Schema: { type: "object", "x-kubernetes-preserve-unknown-fields": true } },
      })),
    },
  }));
}
