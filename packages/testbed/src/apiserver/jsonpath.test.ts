import { describe, expect, it } from "vitest";
import { jsonPathCell } from "./jsonpath.js";

const gateway = {
  spec: { gatewayClassName: "istio-waypoint" },
  status: {
    addresses: [{ value: "10.96.0.1" }, { value: "fd00::1" }],
    conditions: [
      { type: "Accepted", status: "True" },
      { type: "Programmed", status: "False" },
    ],
  },
};

describe("jsonPathCell", () => {
  it('reads fields, [*], [n] and [?(@.k=="v")] as the Gateway API printer columns use them', () => {
    expect(jsonPathCell(gateway, ".spec.gatewayClassName")).toBe("istio-waypoint");
    expect(jsonPathCell(gateway, ".status.addresses[*].value")).toBe("10.96.0.1,fd00::1");
    expect(jsonPathCell(gateway, ".status.addresses[1].value")).toBe("fd00::1");
    expect(jsonPathCell(gateway, '.status.conditions[?(@.type=="Programmed")].status')).toBe("False");
    expect(jsonPathCell(gateway, ".status.conditions[?(@.type=='Accepted')].status")).toBe("True");
  });

  it("prints nothing for what is absent, and refuses a path it cannot read", () => {
    expect(jsonPathCell({}, ".status.addresses[*].value")).toBe("");
    expect(jsonPathCell({}, '.status.conditions[?(@.type=="Programmed")].status')).toBe("");
    expect(() => jsonPathCell({}, ".a..b")).toThrow(/unsupported JSONPath/);
  });
});
