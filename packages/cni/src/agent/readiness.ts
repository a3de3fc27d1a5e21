// The agent's readiness, as the kubelet probes istio-cni-node: GET /readyz answers 200 once every
// start-up phase is done (the cluster source listed, ztunnel's socket listening, the CNI server
// listening, the plugin installed and chained), else 503 naming what is still missing. Until then
// new pods on the node would meet a plugin that cannot reach us, or be judged without labels.

import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Logger } from "@ambient/core";

export class AgentReadiness {
  private readonly waiting: Map<string, string>;

  /** `phases`: id → what readiness waits for, said in the 503 body while it does. */
  constructor(phases: Record<string, string>) {
    this.waiting = new Map(Object.entries(phases));
  }

  done(phase: string): void {
    this.waiting.delete(phase);
  }

  check(): { ready: boolean; reasons: string[] } {
    return { ready: this.waiting.size === 0, reasons: [...this.waiting.values()] };
  }
}

/** Serves GET /readyz on every address at `port` (0: a free one); resolves with the port bound. */
export async function startReadinessServer(
  port: number,
  readiness: AgentReadiness,
  logger: Logger,
): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    if (req.method !== "GET" || req.url !== "/readyz") {
      res.writeHead(404).end("not found\n");
      return;
    }
    const { ready, reasons } = readiness.check();
    res.writeHead(ready ? 200 : 503, { "content-type": "text/plain" });
    res.end(ready ? "ok\n" : `not ready: ${reasons.join("; ")}\n`);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, () => resolve());
  });
  const bound = (server.address() as AddressInfo).port;
  logger.info({ port: bound }, "readiness on /readyz");
  return { server, port: bound };
}
