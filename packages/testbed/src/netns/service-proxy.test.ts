import type { KubeObject } from "@ambient/kube";
import { describe, expect, it } from "vitest";
import { SERVICES_CHAIN, serviceRules } from "./service-proxy.js";

const pod = (name: string, ip: string, labels: Record<string, string>, ready = true): KubeObject =>
  ({
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: "demo", labels },
    spec: { containers: [{ name: "app", ports: [{ name: "http", containerPort: 8080 }] }] },
    status: { podIP: ip, conditions: [{ type: "Ready", status: ready ? "True" : "False" }] },
  }) as KubeObject;

const service = (spec: Record<string, unknown>): KubeObject =>
  ({ apiVersion: "v1", kind: "Service", metadata: { name: "web", namespace: "demo" }, spec }) as KubeObject;

describe("serviceRules (kube-proxy's DNAT for the netns mesh)", () => {
  it("spreads a VIP over the ready endpoints at random, resolving named target ports", () => {
    const rules = serviceRules([
      pod("web-1", "198.19.1.5", { app: "web" }),
      pod("web-2", "198.19.2.5", { app: "web" }),
      pod("web-3", "198.19.2.6", { app: "web" }, false),
      pod("other", "198.19.1.9", { app: "other" }),
      service({
        clusterIP: "198.18.100.1",
        selector: { app: "web" },
        ports: [{ port: 80, targetPort: "http" }],
      }),
    ]);
    expect(rules).toEqual([
      `-A ${SERVICES_CHAIN} -d 198.18.100.1/32 -p tcp -m tcp --dport 80 -m statistic --mode random --probability 0.50000 -j DNAT --to-destination 198.19.1.5:8080`,
      `-A ${SERVICES_CHAIN} -d 198.18.100.1/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 198.19.2.5:8080`,
    ]);
  });

  it("skips headless Services, Services without a selector, UDP ports and Services with no endpoint", () => {
    const web = pod("web-1", "198.19.1.5", { app: "web" });
    expect(
      serviceRules([
        web,
        service({ clusterIP: "None", selector: { app: "web" }, ports: [{ port: 80 }] }),
        service({ clusterIP: "198.18.100.2", ports: [{ port: 80 }] }),
        service({
          clusterIP: "198.18.100.3",
          selector: { app: "web" },
          ports: [{ port: 53, protocol: "UDP" }],
        }),
        service({ clusterIP: "198.18.100.4", selector: { app: "none" }, ports: [{ port: 80 }] }),
      ]),
    ).toEqual([]);
  });
});
