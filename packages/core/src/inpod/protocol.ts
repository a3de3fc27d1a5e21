// The node agent ⇄ ztunnel protocol (in-pod mode): newline-delimited JSON on a unix stream socket
// that the agent listens on. The agent says which pods on the node are enrolled and where their
// network namespaces are; ztunnel acknowledges each message once it has taken it in.
//
//   agent → ztunnel  {"id":1,"type":"add","pod":{"uid","name","namespace","netns","ips":[...]}}
//                    {"id":2,"type":"del","uid":"..."}
//                    {"id":3,"type":"snapshot"}   every pod the agent manages has now been sent:
//                                                  ztunnel drops pods it was not told about
//   ztunnel → agent  {"id":1,"type":"ack"}  or  {"id":1,"type":"ack","error":"..."}
//   either way       {"type":"error","error":"..."}  the peer sent something unreadable; the
//                                                  sender of this line then closes the connection
//
// Istio's own protocol (ZDS) passes the netns as a file descriptor over SOCK_SEQPACKET; Node has no
// SCM_RIGHTS, so we pass the netns path, which the agent checks exists before it sends it.

import { isIP } from "node:net";

const INPOD_PROTOCOL_VERSION = 1;
/** A line longer than this is garbage, not a message: the reader refuses it before parsing. */
export const MAX_LINE_BYTES = 64 * 1024;

export interface InpodPod {
  /** Istio's workload uid: `<cluster>//Pod/<namespace>/<name>`. */
  uid: string;
  name: string;
  namespace: string;
  /** Path of the pod's network namespace, e.g. /var/run/netns/<name> or /proc/<pid>/ns/net. */
  netns: string;
  ips: string[];
}

export type AgentMessage =
  | { id: number; type: "add"; pod: InpodPod }
  | { id: number; type: "del"; uid: string }
  | { id: number; type: "snapshot" };

export type ZtunnelMessage = { id: number; type: "ack"; error?: string } | { type: "error"; error: string };

export class InpodProtocolError extends Error {
  override readonly name = "InpodProtocolError";
}

export function workloadUid(clusterId: string, namespace: string, name: string): string {
  return `${clusterId}//Pod/${namespace}/${name}`;
}

function parseObject(line: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (err) {
    throw new InpodProtocolError(`not JSON (${(err as Error).message}): ${preview(line)}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value))
    throw new InpodProtocolError(`not a JSON object: ${preview(line)}`);
  return value as Record<string, unknown>;
}

function requireId(o: Record<string, unknown>): number {
  if (!Number.isSafeInteger(o.id) || (o.id as number) < 0)
    throw new InpodProtocolError(`"id" must be a non-negative integer, got ${JSON.stringify(o.id)}`);
  return o.id as number;
}

function requireString(o: Record<string, unknown>, field: string, where: string): string {
  const v = o[field];
  if (typeof v !== "string" || v === "")
    throw new InpodProtocolError(`${where}"${field}" must be a non-empty string`);
  return v;
}

/** ztunnel's reader: one line from the agent. */
export function parseAgentMessage(line: string): AgentMessage {
  const o = parseObject(line);
  const id = requireId(o);
  switch (o.type) {
    case "add": {
      const p = o.pod;
      if (typeof p !== "object" || p === null || Array.isArray(p))
        throw new InpodProtocolError(`add ${id}: "pod" must be an object`);
      const pod = p as Record<string, unknown>;
      const where = `add ${id}: pod.`;
      const ips = pod.ips;
      if (!Array.isArray(ips) || ips.some((ip) => typeof ip !== "string" || isIP(ip) === 0))
        throw new InpodProtocolError(
          `${where}"ips" must be a list of IP addresses, got ${JSON.stringify(ips)}`,
        );
      const netns = requireString(pod, "netns", where);
      if (!netns.startsWith("/"))
        throw new InpodProtocolError(`${where}"netns" must be an absolute path, got ${netns}`);
      return {
        id,
        type: "add",
        pod: {
          uid: requireString(pod, "uid", where),
          name: requireString(pod, "name", where),
          namespace: requireString(pod, "namespace", where),
          netns,
          ips: ips as string[],
        },
      };
    }
    case "del":
      return { id, type: "del", uid: requireString(o, "uid", `del ${id}: `) };
    case "snapshot":
      return { id, type: "snapshot" };
    default:
      throw new InpodProtocolError(
        `message ${id}: unknown type ${JSON.stringify(o.type)} (add, del, snapshot)`,
      );
  }
}

/** The agent's reader: one line from ztunnel. */
export function parseZtunnelMessage(line: string): ZtunnelMessage {
  const o = parseObject(line);
  if (o.type === "error") return { type: "error", error: String(o.error ?? "") };
  if (o.type !== "ack") throw new InpodProtocolError(`unknown type ${JSON.stringify(o.type)} (ack, error)`);
  const id = requireId(o);
  if (o.error !== undefined && typeof o.error !== "string")
    throw new InpodProtocolError(`ack ${id}: "error" must be a string`);
  return o.error === undefined ? { id, type: "ack" } : { id, type: "ack", error: o.error };
}

export function encodeLine(message: AgentMessage | ZtunnelMessage): string {
  return `${JSON.stringify(message)}\n`;
}

/**
 * Splits a byte stream into lines. Calls `onLine` per complete line and `onOverflow` (once) when a
 * line grows past MAX_LINE_BYTES without a newline: a peer sending that is not speaking this protocol.
 */
export class LineReader {
  private buffered = "";
  private overflowed = false;

  constructor(
    private readonly onLine: (line: string) => void,
    private readonly onOverflow: () => void,
  ) {}

  push(chunk: Buffer | string): void {
    if (this.overflowed) return;
    this.buffered += chunk.toString();
    let nl = this.buffered.indexOf("\n");
    while (nl >= 0) {
      const line = this.buffered.slice(0, nl).trim();
      this.buffered = this.buffered.slice(nl + 1);
      if (line !== "") this.onLine(line);
      if (this.overflowed) return;
      nl = this.buffered.indexOf("\n");
    }
    if (this.buffered.length > MAX_LINE_BYTES) {
      this.overflowed = true;
      this.onOverflow();
    }
  }
}

function preview(line: string): string {
  const s = line.length > 80 ? `${line.slice(0, 80)}…` : line;
  return JSON.stringify(s);
}
