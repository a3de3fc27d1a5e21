import { describe, expect, it } from "vitest";
import { isAmbientEnrolled } from "./enrolment.js";
import type { Namespace, Pod } from "./model/index.js";

const ns = (labels: Record<string, string> = {}): Namespace => ({
  apiVersion: "v1",
  kind: "Namespace",
  metadata: { name: "demo", labels },
});
const pod = (labels: Record<string, string> = {}, extra: Partial<Pod> = {}): Pod => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name: "web", namespace: "demo", labels },
  spec: {},
  ...extra,
});
const AMBIENT = { "istio.io/dataplane-mode": "ambient" };
const NONE = { "istio.io/dataplane-mode": "none" };

describe("isAmbientEnrolled", () => {
  it("follows the namespace label when the pod has none", () => {
    expect(isAmbientEnrolled(pod(), ns(AMBIENT))).toBe(true);
    expect(isAmbientEnrolled(pod(), ns())).toBe(false);
    expect(isAmbientEnrolled(pod(), undefined)).toBe(false);
  });

  it("lets the pod label win over the namespace label, both ways", () => {
    expect(isAmbientEnrolled(pod(NONE), ns(AMBIENT))).toBe(false);
    expect(isAmbientEnrolled(pod(AMBIENT), ns())).toBe(true);
    expect(isAmbientEnrolled(pod(AMBIENT), ns(NONE))).toBe(true);
  });

  it("ignores other values of the pod label", () => {
    expect(isAmbientEnrolled(pod({ "istio.io/dataplane-mode": "sidecar" }), ns(AMBIENT))).toBe(true);
  });

  it("never enrols host-network pods or pods with a sidecar", () => {
    expect(isAmbientEnrolled(pod(AMBIENT, { spec: { hostNetwork: true } }), ns(AMBIENT))).toBe(false);
    const injected = pod(AMBIENT);
    injected.metadata.annotations = { "sidecar.istio.io/status": '{"containers":["istio-proxy"]}' };
    expect(isAmbientEnrolled(injected, ns(AMBIENT))).toBe(false);
  });
});
