import { once } from "node:events";
import { createServer, type Http2Server, type ServerHttp2Session } from "node:http2";
import type { AddressInfo } from "node:net";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { UpstreamConnectionPolicy } from "./stages.js";
import { eventually, plainDeps, plainWorkload } from "./testing.js";
import { UpstreamH2Sessions } from "./upstream-h2-sessions.js";

// Pooled HTTP/2 sessions to an app on 127.0.0.1 (an endpoint outside the mesh: plain TCP).
describe("UpstreamH2Sessions", () => {
  let app: Http2Server;
  let sessions: ServerHttp2Session[];
  let pool: UpstreamH2Sessions;
  let target: { workload: ReturnType<typeof plainWorkload>; port: number };

  beforeEach(async () => {
    sessions = [];
    app = createServer();
    app.on("session", (s) => sessions.push(s));
    app.on("stream", (stream) => {
      stream.respond({ ":status": 200 });
      stream.end("ok");
    });
    app.listen(0, "127.0.0.1");
    await once(app, "listening");
    target = { workload: plainWorkload(), port: (app.address() as AddressInfo).port };
    pool = new UpstreamH2Sessions(plainDeps);
  });

  afterEach(async () => {
    pool.destroy();
    for (const s of sessions) s.destroy();
    await new Promise<void>((r) => app.close(() => r()));
  });

  async function get(policy?: UpstreamConnectionPolicy): Promise<boolean> {
    const { stream, reused } = await pool.request(target, policy, { ":path": "/" });
    stream.end();
    stream.resume();
    await once(stream, "close");
    return reused;
  }

  it("carries requests to one endpoint on one session", async () => {
    expect([await get(), await get(), await get()]).toEqual([false, true, true]);
    expect(sessions).toHaveLength(1);
  });

  it("a session the app ends with GOAWAY leaves the pool", async () => {
    await get();
    sessions[0]!.close();
    await eventually(async () => {
      expect(await get()).toBe(false);
    });
    expect(sessions).toHaveLength(2);
  });

  it("retires a session at maxRequestsPerConnection and at maxConnectionDuration", async () => {
    const perConnection = { maxRequestsPerConnection: 2, idleTimeoutMs: 60_000 };
    for (let i = 0; i < 4; i++) await get(perConnection);
    expect(sessions).toHaveLength(2);

    const aged = {
      maxRequestsPerConnection: Number.POSITIVE_INFINITY,
      idleTimeoutMs: 60_000,
      maxConnectionDurationMs: 50,
    };
    await get(aged);
    const before = sessions.length;
    await eventually(async () => {
      expect(await get(aged)).toBe(false);
    });
    expect(sessions.length).toBe(before + 1);
  });
});
