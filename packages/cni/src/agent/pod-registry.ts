// The pods on this node that the CNI plugin told us about, with their netns and IPs, and whether
// we enrolled them. Kept in a file so a restarted agent knows what exists and what it had set up
// (the Kubernetes API knows pods, not their netns paths). Written atomically on every change.

import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";

export interface NodePod {
  uid: string;
  name: string;
  namespace: string;
  containerId: string;
  netns: string;
  ips: string[];
  /** Redirection rules are in place and ztunnel was told. */
  enrolled: boolean;
}

const FILE = "pods.json";

export class PodRegistryError extends Error {
  override readonly name = "PodRegistryError";
}

export class PodRegistry {
  private readonly pods = new Map<string, NodePod>();
  private writing: Promise<void> = Promise.resolve();

  constructor(private readonly stateDir: string) {}

  static key(namespace: string, name: string): string {
    return `${namespace}/${name}`;
  }

  get(namespace: string, name: string): NodePod | undefined {
    return this.pods.get(PodRegistry.key(namespace, name));
  }

  all(): NodePod[] {
    return [...this.pods.values()];
  }

  async load(): Promise<void> {
    let text: string;
    try {
      text = await readFile(join(this.stateDir, FILE), "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
      throw err;
    }
    let parsed: { pods?: NodePod[] };
    try {
      parsed = JSON.parse(text) as { pods?: NodePod[] };
    } catch (err) {
      throw new PodRegistryError(`${join(this.stateDir, FILE)} is not valid JSON: ${(err as Error).message}`);
    }
    for (const p of parsed.pods ?? []) this.pods.set(PodRegistry.key(p.namespace, p.name), p);
  }

  async put(pod: NodePod): Promise<void> {
    this.pods.set(PodRegistry.key(pod.namespace, pod.name), pod);
    await this.save();
  }

  async delete(namespace: string, name: string): Promise<boolean> {
    const had = this.pods.delete(PodRegistry.key(namespace, name));
    if (had) await this.save();
    return had;
  }

  /** Serialized writes: the file always holds a complete, recent state. */
  private save(): Promise<void> {
    const body = `${JSON.stringify({ version: 1, pods: this.all() }, null, 2)}\n`;
    this.writing = this.writing.then(async () => {
      await mkdir(this.stateDir, { recursive: true });
      const tmp = join(this.stateDir, `.${FILE}.${process.pid}.tmp`);
      await writeFile(tmp, body);
      await rename(tmp, join(this.stateDir, FILE));
    });
    return this.writing;
  }
}
