import { describe, expect, it } from "vitest";
import {
  encodeLine,
  InpodProtocolError,
  LineReader,
  MAX_LINE_BYTES,
  parseAgentMessage,
  parseZtunnelMessage,
} from "./protocol.js";

const pod = {
  uid: "Kubernetes//Pod/demo/sleep",
  name: "sleep",
  namespace: "demo",
  netns: "/var/run/netns/ambient-demo-sleep",
  ips: ["198.19.1.5"],
};

describe("in-pod protocol", () => {
  it("round-trips every agent message", () => {
    for (const m of [
      { id: 1, type: "add" as const, pod },
      { id: 2, type: "del" as const, uid: pod.uid },
      { id: 3, type: "snapshot" as const },
    ]) {
      expect(parseAgentMessage(encodeLine(m).trim())).toEqual(m);
    }
  });

  it("round-trips acks", () => {
    expect(parseZtunnelMessage('{"id":4,"type":"ack"}')).toEqual({ id: 4, type: "ack" });
    expect(parseZtunnelMessage('{"id":4,"type":"ack","error":"no"}')).toEqual({
      id: 4,
      type: "ack",
      error: "no",
    });
  });

  it.each([
    ["hello", /not JSON/],
    ["[1]", /not a JSON object/],
    ['{"type":"add"}', /"id" must be/],
    ['{"id":1,"type":"jump"}', /unknown type "jump"/],
    [
      '{"id":1,"type":"add","pod":{"uid":"u","name":"n","namespace":"ns","netns":"rel/path","ips":[]}}',
      /absolute path/,
    ],
    [
      '{"id":1,"type":"add","pod":{"uid":"u","name":"n","namespace":"ns","netns":"/x","ips":["999.1.1.1"]}}',
      /list of IP/,
    ],
    ['{"id":1,"type":"add","pod":{"name":"n","namespace":"ns","netns":"/x","ips":[]}}', /pod."uid"/],
    ['{"id":1,"type":"del"}', /"uid" must be/],
  ])("refuses %s with a message naming what is wrong", (line, why) => {
    expect(() => parseAgentMessage(line)).toThrow(InpodProtocolError);
    expect(() => parseAgentMessage(line)).toThrow(why);
  });

  it("splits lines across chunks and refuses an endless line", () => {
    const lines: string[] = [];
    let overflow = 0;
    const r = new LineReader(
      (l) => lines.push(l),
      () => overflow++,
    );
    r.push('{"a":');
    r.push("1}\n\n{");
    r.push('"b":2}\n');
    expect(lines).toEqual(['{"a":1}', '{"b":2}']);
    r.push("x".repeat(MAX_LINE_BYTES + 1));
    r.push("\n");
    expect(overflow).toBe(1);
    expect(lines).toHaveLength(2);
  });
});
