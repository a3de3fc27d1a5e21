// ztunnel in in-pod mode (--inpod-uds) against the real agent side of the protocol, on 127.32.x.y,
// no root: the socket factory is the loopback one wrapped to record which netns each listener was
// asked for. Pods the agent announces get listeners; the same pod in a new netns (a sandbox
// restart) has its old listeners released before the new ones open; a delete closes them; readiness
// waits for the agent's snapshot.

import { join } from "node:path";
import { ZtunnelServer } from "@ambient/cni";
import { LocalTokenAuthenticator } from "@ambient/controlplane";
import { createMemoryLogger, type InpodPod } from "@ambient/core";
import {
  type Listenable,
  LocalSocketFactory,
  type PodRef,
  parseZtunnelConfig,
  type SocketFactory,
  Ztunnel,
} from "@ambient/ztunnel";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  docs,
  eventually,
  namespace,
  node,
  pod,
  type RunningControlPlane,
  startControlPlane,
  type TempDir,
  tempDir,
} from "../utils/index.js";

const NODE_IP = "127.32.1.1";
const POD_IP = "127.32.1.10";
const UID = "Kubernetes//Pod/demo/app";
const PORTS = [15001, 15006, 15008, 15080];

/** The loopback factory, recording the netns each listen/release was for. */
class RecordingFactory implements SocketFactory {
  readonly listens: { netns: string | undefined; port: number }[] = [];
  readonly releases: (string | undefined)[] = [];
  private readonly inner = new LocalSocketFactory(NODE_IP);
  listen(server: Listenable, p: PodRef, port: number) {
    this.listens.push({ netns: p.netns, port });
    return this.inner.listen(server, p, port);
  }
  connect(p: PodRef | undefined, target: { host: string; port: number }) {
    return this.inner.connect(p, target);
  }
  connectToApp(p: PodRef, target: { host: string; port: number }) {
    return this.inner.connectToApp(p, target);
  }
  originalDestination() {
    return undefined;
  }
  release(p: PodRef) {
    this.releases.push(p.netns);
    this.inner.release();
  }
}

const inpod = (netns: string): InpodPod => ({
  uid: UID,
  name: "app",
  namespace: "demo",
  netns,
  ips: [POD_IP],
});

async function accepts(port: number): Promise<boolean> {
  const { connect } = await import("node:net");
  return new Promise((resolve) => {
    const s = connect({ host: POD_IP, port }, () => {
      s.destroy();
      resolve(true);
    });
    s.on("error", () => resolve(false));
  });
}

describe("ztunnel --inpod-uds", () => {
  let cp: RunningControlPlane;
  let dir: TempDir;
  let agent: ZtunnelServer;
  let z: Ztunnel;
  const enrolled: InpodPod[] = [];
  const factory = new RecordingFactory();
  const { logger, records } = createMemoryLogger("debug");

  beforeAll(async () => {
    cp = await startControlPlane({
      "mesh.yaml": docs(
        namespace("demo", { "istio.io/dataplane-mode": "ambient" }),
        node("node-1", NODE_IP),
        pod({ name: "app", namespace: "demo", node: "node-1", ip: POD_IP, sa: "app" }),
      ),
    });
    dir = await tempDir("ambient-inpod-");
    const socket = join(dir.path, "ztunnel.sock");
    agent = new ZtunnelServer(socket, () => enrolled, logger);
    await agent.start();
    const config = parseZtunnelConfig(["--admin-on-node-ip", "--inpod-uds", socket], {
      NODE_NAME: "node-1",
      NODE_IP,
      XDS_ADDRESS: cp.cp.address,
      AMBIENT_NODE_TOKEN_FILE: LocalTokenAuthenticator.tokenPath(cp.state.path, "node-1"),
    });
    z = await Ztunnel.start(config, { logger, sockets: factory });
  });

  afterAll(async () => {
    await z?.stop();
    await agent?.close();
    await cp?.stop();
    await dir?.cleanup();
  });

  it("serves no pod until the agent announces it, then opens its four listeners in its netns", async () => {
    await eventually(() => expect(agent.connected).toBe(1));
    // xDS knows the pod, but only the agent decides it is captured.
    expect(factory.listens).toEqual([]);
    expect(await accepts(15008)).toBe(false);

    await agent.add(inpod("/var/run/netns/sandbox-1"));
    await eventually(() => expect(factory.listens.map((l) => l.port).sort()).toEqual(PORTS));
    expect(new Set(factory.listens.map((l) => l.netns))).toEqual(new Set(["/var/run/netns/sandbox-1"]));
    await eventually(async () => expect(await accepts(15008)).toBe(true));
  });

  it("the same pod in a new netns (a sandbox restart) replaces the old listeners", async () => {
    factory.listens.length = 0;
    await agent.add(inpod("/var/run/netns/sandbox-2"));
    await eventually(() => expect(factory.listens.map((l) => l.port).sort()).toEqual(PORTS));
    expect(new Set(factory.listens.map((l) => l.netns))).toEqual(new Set(["/var/run/netns/sandbox-2"]));
    // The old sandbox was let go of first (its listeners held the same ports).
    expect(factory.releases).toContain("/var/run/netns/sandbox-1");
    // ... and closed: the new listeners bound the same ports without a conflict.
    await eventually(() =>
      expect(
        records.some(
          (r) =>
            String(r["msg"]).startsWith("pod listeners open") && r["netns"] === "/var/run/netns/sandbox-2",
        ),
      ).toBe(true),
    );
    expect(records.filter((r) => r["msg"] === "cannot serve pod")).toEqual([]);
    await eventually(async () => expect(await accepts(15008)).toBe(true));
  });

  it("a delete closes the pod's listeners", async () => {
    await agent.del(UID);
    await eventually(async () => expect(await accepts(15008)).toBe(false));
    expect(factory.releases).toContain("/var/run/netns/sandbox-2");
  });
});
