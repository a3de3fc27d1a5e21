// kube-controller-manager and kube-scheduler for the one-machine cluster: each controller follows
// the API with its own reflectors and writes through the API only, like the real ones.
// `startControllers` starts them all; `stop` stops them. Nothing else here is public API.

import type { Controller, ControllerDeps } from "./controller.js";
import { DaemonSetController } from "./daemonset.js";
import { DeploymentController } from "./deployment.js";
import { ReplicaSetController } from "./replicaset.js";
import { Scheduler } from "./scheduler.js";

export type { ControllerDeps };

export interface Controllers {
  stop(): Promise<void>;
}

export async function startControllers(d: ControllerDeps): Promise<Controllers> {
  const all: Controller[] = [
    new Scheduler(d),
    new ReplicaSetController(d),
    new DeploymentController(d),
    new DaemonSetController(d),
  ];
  const started: Controller[] = [];
  try {
    for (const c of all) {
      await c.start();
      started.push(c);
    }
  } catch (err) {
    await Promise.allSettled(started.map((c) => c.stop()));
    throw err;
  }
  return { stop: async () => void (await Promise.allSettled(all.map((c) => c.stop()))) };
}
