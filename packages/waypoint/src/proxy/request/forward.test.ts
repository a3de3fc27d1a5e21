import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { Readable } from "node:stream";
import { hasCode, WaypointErrorCode } from "@ambient/core";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { info, l7Request, stagesTo, testContext } from "../testing.js";
import type { AttemptRequest } from "./attempt.js";
import { ReplayBody } from "./body.js";
import { Exchange } from "./exchange.js";
import { forward } from "./forward.js";
import type { ForwardPlan } from "./route.js";
import { RequestClock } from "./timers.js";

// The pick-and-forward stage alone, over HTTP/1.1 to a real server on 127.0.0.1.
describe("forward", () => {
  let app: Server;
  let port: number;
  let seen: { path: string; socket: Socket }[];
  /** What the app does with the n-th request on a path. */
  let behave: (path: string, n: number, socket: Socket) => number | "reset";
  let setup: ReturnType<typeof testContext>;

  beforeEach(async () => {
    seen = [];
    behave = () => 200;
    app = createServer((req, res) => {
      seen.push({ path: req.url ?? "", socket: req.socket });
      const n = seen.filter((s) => s.path === req.url).length;
      const what = behave(req.url ?? "", n, req.socket);
      req.resume();
      // As an app that crashed or closed the connection the instant the request arrived.
      if (what === "reset") return req.socket.resetAndDestroy();
      res.setHeader("connection", "keep-alive");
      res.writeHead(what).end(`attempt ${n}`);
    });
    app.listen(0, "127.0.0.1");
    await once(app, "listening");
    port = (app.address() as AddressInfo).port;
  });

  afterEach(async () => {
    setup?.close();
    app.closeAllConnections();
    await new Promise<void>((r) => app.close(() => r()));
  });

  async function run(
    path: string,
    opts: Parameters<typeof stagesTo>[1] = {},
    body: Buffer = Buffer.alloc(0),
    bodyLimit?: number,
  ) {
    const stages = stagesTo(port, opts);
    setup = setup ?? testContext(stages);
    const ex = new Exchange(l7Request(path), info);
    const plan = stages.route(ex.l7) as ForwardPlan;
    const request: AttemptRequest = { method: "POST", path, authority: "app", headers: {}, upgrade: [] };
    const replay = new ReplayBody(Readable.from(body.length > 0 ? [body] : []), bodyLimit);
    const send = setup.ctx.sendHttp1;
    const clock = new RequestClock(5_000);
    replay.once("complete", () => clock.requestDone());
    try {
      const out = await forward({ stages, send, clock, exchange: ex, plan, request, body: replay });
      const text = await new Promise<string>((resolve) => {
        let t = "";
        out.response.body.on("data", (c: Buffer) => {
          t += c.toString();
        });
        out.response.body.once("end", () => resolve(t));
      });
      out.dispose();
      return { status: out.response.status, text, flag: out.flag, ex, stages };
    } finally {
      clock.dispose();
    }
  }

  it("sends again on a fresh connection when a pooled one dies before any answer, whatever the retry policy", async () => {
    expect((await run("/warm")).status).toBe(200);
    const pooled = seen[0]!.socket;
    // The next request on the pooled connection meets a reset; on any other it is answered.
    behave = (_path, _n, socket) => (socket === pooled ? "reset" : 200);
    const res = await run("/after");
    expect(res).toMatchObject({ status: 200, text: "attempt 2", flag: "-" });
    // One attempt as far as the retry policy and the access log go; the endpoint was picked once.
    expect(res.ex.attempts).toBe(1);
    expect(res.stages.picks).toBe(1);
    expect(seen.filter((s) => s.path === "/after").map((s) => s.socket === pooled)).toEqual([true, false]);
  });

  it("retries a retriable status up to the attempts, then keeps the last answer with flag URX", async () => {
    behave = () => 503;
    const retry = { attempts: 2, shouldRetry: (o: { status?: number }) => o.status === 503 };
    const res = await run("/always-503", { retry });
    expect(res).toMatchObject({ status: 503, text: "attempt 3", flag: "URX" });
    expect(res.ex.attempts).toBe(3);
  });

  it("makes no retry once the cluster's retry budget is spent (flag UO)", async () => {
    behave = () => 503;
    const retry = { attempts: 2, shouldRetry: () => true };
    const res = await run("/budget", { retry, acquireRetry: () => undefined });
    expect(res).toMatchObject({ status: 503, text: "attempt 1", flag: "UO" });
  });

  it("makes no retry when the body outgrew the retry buffer", async () => {
    behave = () => 503;
    const retry = { attempts: 2, shouldRetry: () => true };
    const res = await run("/big", { retry }, Buffer.alloc(64, 1), 16);
    expect(res).toMatchObject({ status: 503, text: "attempt 1" });
  });

  it("fails with a typed connect error when nothing listens", async () => {
    const spare = createServer();
    spare.listen(0, "127.0.0.1");
    await once(spare, "listening");
    port = (spare.address() as AddressInfo).port;
    await new Promise<void>((r) => spare.close(() => r()));
    const err = await run("/down").catch((e: unknown) => e);
    expect(hasCode(err, WaypointErrorCode.UPSTREAM_CONNECT)).toBe(true);
  });
});
