import { describe, expect, it } from "vitest";
import { compileRoutes } from "./compile.js";
import type { RouteDecision } from "./decision.js";
import type { VsObject } from "./spec.js";
import { type RequestOverrides, request, virtualService } from "./testing.js";

/** A compact view of a decision for table assertions. */
function outcome(d: RouteDecision): string {
  switch (d.kind) {
    case "route":
      return `${d.destination.host}${d.destination.subset ? `/${d.destination.subset}` : ""}`;
    case "redirect":
      return `redirect ${d.status} ${d.location}`;
    case "direct":
      return `direct ${d.status}`;
    case "no-route":
      return "no-route";
    case "default":
      return "default";
  }
}

// samples/bookinfo/networking/virtual-service-reviews-test-v2.yaml
const reviewsTestV2 = virtualService("reviews", {
  hosts: ["reviews"],
  http: [
    {
      match: [{ headers: { "end-user": { exact: "jason" } } }],
      route: [{ destination: { host: "reviews", subset: "v2" } }],
    },
    { route: [{ destination: { host: "reviews", subset: "v1" } }] },
  ],
});

describe("Istio bookinfo: request routing by user identity", () => {
  const table = compileRoutes([reviewsTestV2]);
  it.each<[string, RequestOverrides, string]>([
    ["jason sees v2", { headers: { "end-user": "jason" } }, "reviews.default.svc.cluster.local/v2"],
    ["another user sees v1", { headers: { "end-user": "bob" } }, "reviews.default.svc.cluster.local/v1"],
    ["anonymous sees v1", { headers: {} }, "reviews.default.svc.cluster.local/v1"],
    [
      "the header value is case-sensitive",
      { headers: { "end-user": "Jason" } },
      "reviews.default.svc.cluster.local/v1",
    ],
  ])("%s", (_name, req, expected) => {
    expect(outcome(table.route(request(req)))).toBe(expected);
  });
});

describe("rule order and match semantics", () => {
  const table = compileRoutes([
    virtualService("ratings", {
      hosts: ["ratings.default.svc.cluster.local"],
      http: [
        {
          name: "api",
          match: [{ uri: { prefix: "/api" } }],
          route: [{ destination: { host: "ratings", subset: "api" } }],
        },
        // Never reached for /api/...: the first matching rule wins even if a later one is narrower.
        {
          match: [{ uri: { exact: "/api/special" } }],
          route: [{ destination: { host: "ratings", subset: "special" } }],
        },
        {
          // Match blocks are ORed.
          match: [{ method: { exact: "DELETE" } }, { headers: { "x-admin": {} } }],
          route: [{ destination: { host: "ratings", subset: "admin" } }],
        },
        { match: [{ port: 9090 }], route: [{ destination: { host: "ratings", subset: "metrics" } }] },
      ],
    }),
  ]);
  const ratings = { destination: { host: "ratings.default.svc.cluster.local" } };

  it.each<[string, RequestOverrides, string]>([
    ["prefix rule", { path: "/api/special" }, "ratings.default.svc.cluster.local/api"],
    ["first block of an OR", { method: "DELETE" }, "ratings.default.svc.cluster.local/admin"],
    ["second block of an OR", { headers: { "x-admin": "1" } }, "ratings.default.svc.cluster.local/admin"],
    ["port match", { port: 9090 }, "ratings.default.svc.cluster.local/metrics"],
    ["nothing matches: 404 NR", { path: "/other" }, "no-route"],
  ])("%s", (_name, req, expected) => {
    expect(outcome(table.route(request({ ...ratings, ...req })))).toBe(expected);
  });

  it("names the route after the rule and the match block", () => {
    const named = compileRoutes([
      virtualService("r", {
        hosts: ["reviews"],
        http: [
          {
            name: "canary",
            match: [{ name: "jason", headers: { "end-user": { exact: "jason" } } }],
            route: [{ destination: { host: "reviews" } }],
          },
        ],
      }),
    ]);
    const d = named.route(request({ headers: { "end-user": "jason" } }));
    expect(d.kind === "route" && d.name).toBe("canary.jason");
  });
});

describe("choosing the VirtualService for a host", () => {
  const vs = (
    name: string,
    hosts: string[],
    subset: string,
    namespace = "default",
    extra: Partial<VsObject["spec"]> = {},
  ) =>
    virtualService(
      name,
      { hosts, http: [{ route: [{ destination: { host: "reviews", subset } }] }], ...extra },
      namespace,
    );

  it("resolves short hosts in the VirtualService's namespace", () => {
    const table = compileRoutes([vs("r", ["reviews"], "prod", "prod")]);
    expect(
      outcome(
        table.route(request({ destination: { host: "reviews.prod.svc.cluster.local", namespace: "prod" } })),
      ),
    ).toBe("reviews.prod.svc.cluster.local/prod");
    expect(table.route(request()).kind).toBe("default");
  });

  it("uses a custom resolver for short names", () => {
    const table = compileRoutes([vs("r", ["reviews"], "v1")], {
      defaultHostResolver: (short, ns) => `${short}.${ns}.svc.corp.internal`,
    });
    const d = table.route(request({ destination: { host: "reviews.default.svc.corp.internal" } }));
    expect(outcome(d)).toBe("reviews.default.svc.corp.internal/v1");
  });

  it("matches wildcard hosts and prefers the most specific host", () => {
    const table = compileRoutes([
      vs("any", ["*.example.com"], "wild"),
      vs("api", ["*.api.example.com"], "api-wild"),
      vs("exact", ["v1.api.example.com"], "exact"),
    ]);
    const subset = (host: string) => {
      const d = table.route(request({ destination: { host } }));
      return d.kind === "route" ? d.destination.subset : d.kind;
    };
    expect(subset("v1.api.example.com")).toBe("exact");
    expect(subset("v2.api.example.com")).toBe("api-wild");
    expect(subset("shop.example.com")).toBe("wild");
    expect(subset("example.com")).toBe("default");
  });

  it("breaks ties between equally specific hosts by age, then by input order", () => {
    const young = {
      ...vs("young", ["reviews"], "young"),
      metadata: { name: "young", namespace: "default", creationTimestamp: "2024-05-01T00:00:00Z" },
    };
    const old = {
      ...vs("old", ["reviews"], "old"),
      metadata: { name: "old", namespace: "default", creationTimestamp: "2023-05-01T00:00:00Z" },
    };
    expect(outcome(compileRoutes([young, old]).route(request()))).toMatch(/\/old$/);
    expect(
      outcome(compileRoutes([vs("a", ["reviews"], "a"), vs("b", ["reviews"], "b")]).route(request())),
    ).toMatch(/\/a$/);
  });

  it("does not fall through to a less specific VirtualService when no rule matches", () => {
    const table = compileRoutes([
      virtualService("exact", {
        hosts: ["reviews"],
        http: [{ match: [{ uri: { prefix: "/x" } }], route: [{ destination: { host: "reviews" } }] }],
      }),
      vs("wild", ["*.svc.cluster.local"], "wild"),
    ]);
    expect(table.route(request({ path: "/y" })).kind).toBe("no-route");
  });

  it("ignores VirtualServices bound only to gateways, and ones without http rules", () => {
    const table = compileRoutes([
      vs("gw", ["reviews"], "gw", "default", { gateways: ["istio-system/ingress"] }),
      virtualService("tcp", { hosts: ["reviews"], tcp: [{}] }),
    ]);
    expect(table.size).toBe(0);
    expect(table.route(request()).kind).toBe("default");
    const mesh = compileRoutes([
      vs("both", ["reviews"], "mesh", "default", { gateways: ["ingress", "mesh"] }),
    ]);
    expect(outcome(mesh.route(request()))).toMatch(/\/mesh$/);
  });

  it("with the waypoint's namespace, takes only VirtualServices from it or the service's namespace", () => {
    const objects = [
      vs("elsewhere", ["reviews.default.svc.cluster.local"], "elsewhere", "other"),
      vs("hidden", ["reviews.default.svc.cluster.local"], "hidden", "waypoint", { exportTo: ["other"] }),
    ];
    expect(compileRoutes(objects, { namespace: "waypoint" }).route(request()).kind).toBe("default");
    expect(outcome(compileRoutes(objects).route(request()))).toMatch(/\/elsewhere$/);
    const local = compileRoutes(
      [vs("local", ["reviews.default.svc.cluster.local"], "local", "waypoint", { exportTo: ["."] })],
      {
        namespace: "waypoint",
      },
    );
    expect(outcome(local.route(request()))).toMatch(/\/local$/);
  });

  it("falls back to the Host header when the destination is a workload address", () => {
    const table = compileRoutes([vs("r", ["reviews"], "v1")]);
    const byIp = request({
      destination: { host: "10.244.1.7", namespace: undefined },
      authority: "reviews:9080",
    });
    expect(outcome(table.route(byIp))).toBe("reviews.default.svc.cluster.local/v1");
    expect(table.virtualServiceFor(byIp)).toEqual({ namespace: "default", name: "r" });
  });
});

describe("no-route versus default", () => {
  it.each<[string, VsObject[], RequestOverrides, string]>([
    ["no VirtualService for the host", [], {}, "default"],
    [
      "a VirtualService whose rules do not match",
      [
        virtualService("r", {
          hosts: ["reviews"],
          http: [{ match: [{ uri: { exact: "/a" } }], route: [{ destination: { host: "reviews" } }] }],
        }),
      ],
      { path: "/b" },
      "no-route",
    ],
    [
      // Istio builds no routes for this port and the waypoint falls back to the service.
      "every block pinned to another port",
      [
        virtualService("r", {
          hosts: ["reviews"],
          http: [{ match: [{ port: 8080 }], route: [{ destination: { host: "reviews" } }] }],
        }),
      ],
      {},
      "default",
    ],
    [
      "sourceLabels blocks are dropped at a waypoint",
      [
        virtualService("r", {
          hosts: ["reviews"],
          http: [
            {
              match: [{ sourceLabels: { app: "productpage" } }],
              route: [{ destination: { host: "reviews", subset: "v2" } }],
            },
            { route: [{ destination: { host: "reviews", subset: "v1" } }] },
          ],
        }),
      ],
      {},
      "reviews.default.svc.cluster.local/v1",
    ],
    [
      "match-level gateways without mesh",
      [
        virtualService("r", {
          hosts: ["reviews"],
          http: [
            {
              match: [{ gateways: ["ingress"] }],
              route: [{ destination: { host: "reviews", subset: "gw" } }],
            },
            {
              match: [{ uri: { prefix: "/x" } }],
              route: [{ destination: { host: "reviews", subset: "x" } }],
            },
          ],
        }),
      ],
      {},
      "no-route",
    ],
  ])("%s", (_name, objects, req, expected) => {
    expect(outcome(compileRoutes(objects).route(request(req)))).toBe(expected);
  });

  it("the default decision carries Istio's default retry policy", () => {
    const d = compileRoutes([]).route(request());
    expect(d.kind === "default" && d.retry.attempts).toBe(2);
  });
});

describe("compile errors", () => {
  it("lists every unusable field of every VirtualService at once", () => {
    const bad = [
      virtualService("a", {
        hosts: ["reviews"],
        http: [
          {
            match: [{ uri: { regex: "(" } }],
            timeout: "soon",
            route: [{ destination: { host: "reviews" } }],
          },
        ],
      }),
      virtualService(
        "b",
        { hosts: ["ratings"], http: [{ redirect: { uri: "/x", redirectCode: 399 } }] },
        "prod",
      ),
    ];
    let error: unknown;
    try {
      compileRoutes(bad);
    } catch (err) {
      error = err;
    }
    expect(error).toMatchObject({ code: "AMB_OBJECT_INVALID" });
    const problems = (error as { details: { problems: { object: string; path: string }[] } }).details
      .problems;
    expect(problems.map((p) => `${p.object} ${p.path}`).sort()).toEqual([
      "default/a spec.http[0].match[0].uri.regex",
      "default/a spec.http[0].timeout",
      "prod/b spec.http[0].redirect.redirectCode",
    ]);
  });
});

describe("an ingress gateway's table (gateways option)", () => {
  const served = ["istio-system/public"];
  const vs = (name: string, namespace: string, spec: Partial<VsObject["spec"]>) =>
    virtualService(
      name,
      {
        hosts: ["shop.example.com"],
        http: [{ route: [{ destination: { host: "shop", subset: name } }] }],
        ...spec,
      },
      namespace,
    );
  // At a gateway the connection is to the gateway itself: the Host is all there is.
  const atGateway = (authority: string, o: RequestOverrides = {}) =>
    request({ authority, port: 80, destination: { host: "10.0.0.50", ip: "10.0.0.50", port: 80 }, ...o });

  it("a short gateway name is resolved in the VirtualService's namespace", () => {
    const own = compileRoutes([vs("own", "istio-system", { gateways: ["public"] })], { gateways: served });
    expect(outcome(own.route(atGateway("shop.example.com")))).toBe("shop.istio-system.svc.cluster.local/own");
    // "public" in shop is shop/public, which this gateway does not serve.
    const other = compileRoutes([vs("other", "shop", { gateways: ["public"] })], { gateways: served });
    expect(other.route(atGateway("shop.example.com"))).toEqual({ kind: "no-route" });
  });

  it("ns/name binds a VirtualService of another namespace", () => {
    const table = compileRoutes([vs("shop", "shop", { gateways: ["istio-system/public"] })], {
      gateways: served,
    });
    expect(outcome(table.route(atGateway("Shop.Example.com:80")))).toBe("shop.shop.svc.cluster.local/shop");
  });

  it("mesh VirtualServices (no gateways, or mesh) do not route at the gateway, and there is no default", () => {
    const table = compileRoutes([vs("none", "shop", {}), vs("mesh", "shop", { gateways: ["mesh"] })], {
      gateways: served,
    });
    expect(table.route(atGateway("shop.example.com"))).toEqual({ kind: "no-route" });
    // The same VirtualServices in a waypoint's table do.
    expect(outcome(compileRoutes([vs("none", "shop", {})]).route(atGateway("shop.example.com")))).toBe(
      "shop.shop.svc.cluster.local/none",
    );
  });

  it("a gateway-bound VirtualService does not route mesh traffic at a waypoint", () => {
    const table = compileRoutes([vs("gw", "shop", { gateways: ["istio-system/public"] })]);
    expect(table.route(atGateway("shop.example.com")).kind).toBe("default");
  });

  it("match blocks naming gateways apply only at a gateway they name", () => {
    const table = compileRoutes(
      [
        virtualService(
          "split",
          {
            hosts: ["shop.example.com"],
            gateways: ["istio-system/public", "istio-system/private", "mesh"],
            http: [
              {
                match: [{ gateways: ["istio-system/private"] }],
                route: [{ destination: { host: "private" } }],
              },
              { match: [{ gateways: ["mesh"] }], route: [{ destination: { host: "mesh" } }] },
              { match: [{ gateways: ["public"] }], route: [{ destination: { host: "short-name" } }] },
              {
                match: [{ gateways: ["istio-system/public"] }],
                route: [{ destination: { host: "public" } }],
              },
            ],
          },
          "shop",
        ),
      ],
      { gateways: served },
    );
    expect(outcome(table.route(atGateway("shop.example.com")))).toBe("public.shop.svc.cluster.local");
  });

  it("a VirtualService owning the host with no block for this gateway is no-route naming it", () => {
    const table = compileRoutes(
      [
        virtualService(
          "private-only",
          {
            hosts: ["shop.example.com"],
            gateways: ["istio-system/public"],
            http: [
              { match: [{ gateways: ["istio-system/private"] }], route: [{ destination: { host: "x" } }] },
            ],
          },
          "shop",
        ),
      ],
      { gateways: served },
    );
    expect(table.route(atGateway("shop.example.com"))).toEqual({
      kind: "no-route",
      virtualService: { namespace: "shop", name: "private-only" },
    });
  });

  it('hosts "*" takes any Host, an IP with a port included; a more specific host wins', () => {
    const table = compileRoutes(
      [
        vs("any", "shop", { hosts: ["*"], gateways: ["istio-system/public"] }),
        vs("exact", "shop", { gateways: ["istio-system/public"] }),
      ],
      { gateways: served },
    );
    expect(outcome(table.route(atGateway("10.0.0.50:80")))).toBe("shop.shop.svc.cluster.local/any");
    expect(outcome(table.route(atGateway("[fd00::1]:8080")))).toBe("shop.shop.svc.cluster.local/any");
    expect(outcome(table.route(atGateway("shop.example.com")))).toBe("shop.shop.svc.cluster.local/exact");
  });

  it("the Host decides, not the destination the connection was made to", () => {
    const table = compileRoutes([vs("shop", "shop", { gateways: ["istio-system/public"] })], {
      gateways: served,
    });
    const req = atGateway("other.example.com", {
      destination: { host: "shop.example.com", ip: "10.0.0.50", port: 80 },
    });
    expect(table.route(req)).toEqual({ kind: "no-route" });
  });

  it("no VirtualService at all: no-route", () => {
    expect(compileRoutes([], { gateways: served }).route(atGateway("shop.example.com"))).toEqual({
      kind: "no-route",
    });
  });
});
