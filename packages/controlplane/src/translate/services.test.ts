import type { KubeObject } from "@ambient/kube";
import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { translate } from "./index.js";

function services(text: string, network?: string) {
  return translate(
    parseAllDocuments(text).map((d) => d.toJS() as KubeObject),
    network === undefined ? {} : { network },
  ).services;
}

const svc = (spec: string, meta = "") => `
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: demo
${meta}
spec:
${spec}
`;

describe("services", () => {
  it("builds hostname, VIP and ports", () => {
    const [s, ...rest] = services(
      svc(`  clusterIP: 10.96.0.10
  selector: { app: web }
  ports:
    - { name: http, port: 80, targetPort: 8080 }
    - { name: grpc-api, port: 9090, targetPort: grpc }
    - { name: tcp, port: 5432 }`),
      "net1",
    );
    expect(rest).toEqual([]);
    expect(s).toEqual({
      name: "web",
      namespace: "demo",
      hostname: "web.demo.svc.cluster.local",
      addresses: [{ network: "net1", address: new Uint8Array([10, 96, 0, 10]) }],
      ports: [
        { servicePort: 80, targetPort: 8080, appProtocol: "HTTP11" },
        { servicePort: 9090, targetPort: 0, appProtocol: "GRPC" },
        { servicePort: 5432, targetPort: 5432 },
      ],
      subjectAltNames: [],
    });
  });

  it("carries both families of a dual-stack service", () => {
    const [s] = services(
      svc("  clusterIP: 10.96.0.10\n  clusterIPs: [10.96.0.10, 'fd00::10']\n  ports: [{ port: 80 }]"),
    );
    expect(s!.addresses.map((a) => a.address.length)).toEqual([4, 16]);
  });

  it("keeps headless services, without addresses", () => {
    const [s] = services(svc("  clusterIP: None\n  selector: { app: web }\n  ports: [{ port: 80 }]"));
    expect(s).toMatchObject({ hostname: "web.demo.svc.cluster.local", addresses: [] });
  });

  it("prefers closer endpoints for PreferClose, from the field or Istio's annotation", () => {
    const preferClose = { routingPreference: ["NETWORK", "REGION", "ZONE", "SUBZONE"], mode: "FAILOVER" };
    expect(
      services(svc("  trafficDistribution: PreferClose\n  ports: [{ port: 80 }]"))[0]!.loadBalancing,
    ).toEqual(preferClose);
    const annotated = svc(
      "  ports: [{ port: 80 }]",
      "  annotations: { networking.istio.io/traffic-distribution: PreferClose }",
    );
    expect(services(annotated)[0]!.loadBalancing).toEqual(preferClose);
    expect(services(svc("  ports: [{ port: 80 }]"))[0]!.loadBalancing).toBeUndefined();
  });

  it("sorts services by namespace/hostname", () => {
    const text = ["b", "a"]
      .map(
        (ns) =>
          `---\napiVersion: v1\nkind: Service\nmetadata: { name: s, namespace: ${ns} }\nspec: { ports: [{ port: 80 }] }\n`,
      )
      .join("");
    expect(services(text).map((s) => s.namespace)).toEqual(["a", "b"]);
  });
});
