import type { L7Resource } from "@ambient/core";
import { describe, expect, it } from "vitest";
import { seededRandom } from "../route/testing.js";
import { TlsRoutes } from "./tls-routes.js";

function vs(name: string, spec: unknown, namespace = "shop"): L7Resource {
  return {
    kind: "VirtualService",
    apiVersion: "networking.istio.io/v1",
    namespace,
    name,
    spec,
    labels: {},
    annotations: {},
  };
}

const served = ["istio-system/public"];
const to = (host: string, port?: number, weight?: number) => ({
  destination: { host, ...(port ? { port: { number: port } } : {}) },
  ...(weight !== undefined ? { weight } : {}),
});

describe("TlsRoutes", () => {
  const routes = new TlsRoutes(
    [
      vs("exact", {
        hosts: ["*"],
        gateways: ["istio-system/public"],
        tls: [{ match: [{ sniHosts: ["db.example.com"] }], route: [to("db", 5432)] }],
      }),
      vs("wild", {
        hosts: ["*"],
        gateways: ["istio-system/public"],
        tls: [
          // Pinned to 8443: a wildcard SNI on 443 falls through to the next rule.
          { match: [{ sniHosts: ["*.example.com"], port: 8443 }], route: [to("pinned", 9443)] },
          { match: [{ sniHosts: ["*.Example.com"] }], route: [to("wild.other.svc.cluster.local")] },
        ],
      }),
    ],
    served,
  );

  it.each<[string | undefined, number, string | undefined]>([
    ["db.example.com", 443, "db.shop.svc.cluster.local:5432 shop/exact"],
    ["api.example.com", 8443, "pinned.shop.svc.cluster.local:9443 shop/wild"],
    // No destination port: the gateway port the client connected to.
    ["api.example.com", 443, "wild.other.svc.cluster.local:443 shop/wild"],
    ["example.com", 443, undefined], // "*.example.com" does not cover the bare domain
    ["other.test", 443, undefined],
    [undefined, 443, undefined], // nothing to route by without SNI
  ])("SNI %s on port %i → %s", (sni, port, expected) => {
    const d = routes.route(sni, port);
    expect(d && `${d.host}:${d.port} ${d.virtualService}`).toBe(expected);
  });

  it("sniHosts default to the VirtualService's hosts", () => {
    const r = new TlsRoutes(
      [
        vs(
          "hosts",
          { hosts: ["Mail.Example.com"], gateways: ["public"], tls: [{ match: [{}], route: [to("mail")] }] },
          "istio-system",
        ),
      ],
      served,
    );
    expect(r.route("mail.example.com", 443)?.host).toBe("mail.istio-system.svc.cluster.local");
    expect(r.route("db.example.com", 443)).toBeUndefined();
  });

  it("a VirtualService bound to another gateway, to the mesh or to none is ignored", () => {
    const rule = { match: [{ sniHosts: ["db.example.com"] }], route: [to("db")] };
    const r = new TlsRoutes(
      [
        vs("other-gw", { hosts: ["*"], gateways: ["istio-system/private"], tls: [rule] }),
        // "public" without a namespace is shop/public, not istio-system/public.
        vs("same-name", { hosts: ["*"], gateways: ["public"], tls: [rule] }),
        vs("mesh", { hosts: ["*"], gateways: ["mesh"], tls: [rule] }),
        vs("none", { hosts: ["*"], tls: [rule] }),
      ],
      served,
    );
    expect(r.route("db.example.com", 443)).toBeUndefined();
  });

  it("a match block's gateways must name a served gateway too", () => {
    const r = new TlsRoutes(
      [
        vs("both", {
          hosts: ["*"],
          gateways: ["istio-system/public", "istio-system/private"],
          tls: [
            {
              match: [{ sniHosts: ["db.example.com"], gateways: ["istio-system/private"] }],
              route: [to("private")],
            },
            {
              match: [{ sniHosts: ["db.example.com"], gateways: ["istio-system/public"] }],
              route: [to("public")],
            },
          ],
        }),
      ],
      served,
    );
    expect(r.route("db.example.com", 443)?.host).toBe("public.shop.svc.cluster.local");
  });

  it("a matching rule without destinations does not stop the search", () => {
    const r = new TlsRoutes(
      [
        vs("empty", {
          hosts: ["*"],
          gateways: ["istio-system/public"],
          tls: [
            { match: [{ sniHosts: ["db.example.com"] }], route: [{ destination: {} }] },
            { match: [{ sniHosts: ["db.example.com"] }], route: [to("db")] },
          ],
        }),
      ],
      served,
    );
    expect(r.route("db.example.com", 443)?.host).toBe("db.shop.svc.cluster.local");
  });

  describe("weights", () => {
    const split = new TlsRoutes(
      [
        vs("split", {
          hosts: ["*"],
          gateways: ["istio-system/public"],
          tls: [{ match: [{ sniHosts: ["db.example.com"] }], route: [to("v1", 0, 90), to("v2", 0, 10)] }],
        }),
      ],
      served,
    );
    const pick = (r: number) => split.route("db.example.com", 443, () => r)?.host;

    it("the random draw falls into the destination's share", () => {
      expect(pick(0)).toBe("v1.shop.svc.cluster.local");
      expect(pick(0.899)).toBe("v1.shop.svc.cluster.local");
      expect(pick(0.9)).toBe("v2.shop.svc.cluster.local");
      expect(pick(0.999)).toBe("v2.shop.svc.cluster.local");
    });

    it("over many connections the split follows the weights", () => {
      const random = seededRandom(42);
      let v2 = 0;
      for (let i = 0; i < 10_000; i++)
        if (split.route("db.example.com", 443, random)?.host.startsWith("v2")) v2++;
      expect(v2).toBeGreaterThan(800);
      expect(v2).toBeLessThan(1200);
    });

    it("no weights at all: equal shares", () => {
      const even = new TlsRoutes(
        [
          vs("even", {
            hosts: ["*"],
            gateways: ["istio-system/public"],
            tls: [{ match: [{ sniHosts: ["db.example.com"] }], route: [to("a"), to("b")] }],
          }),
        ],
        served,
      );
      expect(even.route("db.example.com", 443, () => 0.49)?.host).toBe("a.shop.svc.cluster.local");
      expect(even.route("db.example.com", 443, () => 0.5)?.host).toBe("b.shop.svc.cluster.local");
    });
  });
});
