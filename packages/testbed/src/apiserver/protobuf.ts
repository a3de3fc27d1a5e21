// Protobuf request bodies from client-go's typed clients, which do not fall back to JSON on 415:
// kubectl posts TokenRequest, `create namespace` and `create deployment` that way, helm its release Secrets. We decode those few messages
// (envelope `k8s\0` + runtime.Unknown, field numbers from k8s.io/api's generated.proto); answers
// stay JSON, which the same clients accept. Any other protobuf body is a clear 415.

import { ApiErrorCode, apiError, badRequest } from "./errors.js";

const MAGIC = Buffer.from([0x6b, 0x38, 0x73, 0x00]);

type Fields = Map<number, (bigint | Buffer)[]>;

function readFields(buf: Buffer): Fields {
  const out: Fields = new Map();
  let pos = 0;
  const varint = (): bigint => {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      if (pos >= buf.length) throw badRequest("truncated protobuf body");
      const byte = buf[pos++]!;
      result |= BigInt(byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) return result;
      shift += 7n;
    }
  };
  while (pos < buf.length) {
    const key = Number(varint());
    const field = key >> 3;
    const wire = key & 7;
    let value: bigint | Buffer;
    if (wire === 0) value = varint();
    else if (wire === 2) {
      const len = Number(varint());
      value = buf.subarray(pos, pos + len);
      pos += len;
    } else if (wire === 1) {
      value = buf.readBigUInt64LE(pos);
      pos += 8;
    } else if (wire === 5) {
      value = BigInt(buf.readUInt32LE(pos));
      pos += 4;
    } else throw badRequest(`unsupported protobuf wire type ${wire}`);
    out.set(field, [...(out.get(field) ?? []), value]);
  }
  return out;
}

const str = (f: Fields, n: number) => (f.get(n)?.[0] as Buffer | undefined)?.toString("utf8");
const msg = (f: Fields, n: number) => {
  const b = f.get(n)?.[0];
  return Buffer.isBuffer(b) ? readFields(b) : undefined;
};

const strs = (f: Fields, n: number) => (f.get(n) ?? []).map((b) => (b as Buffer).toString("utf8"));
const num = (f: Fields, n: number) => {
  const v = f.get(n)?.[0];
  return typeof v === "bigint" ? Number(v) : undefined;
};

/** map<string, string|bytes> fields are repeated {key = 1, value = 2} entries. */
function map(f: Fields, n: number, bytes = false): Record<string, string> | undefined {
  const entries = f.get(n);
  if (!entries) return undefined;
  const out: Record<string, string> = {};
  for (const e of entries) {
    const kv = readFields(e as Buffer);
    const value = kv.get(2)?.[0] as Buffer | undefined;
    out[str(kv, 1) ?? ""] = bytes
      ? (value ?? Buffer.alloc(0)).toString("base64")
      : (value?.toString("utf8") ?? "");
  }
  return out;
}

function compact(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}

/** ObjectMeta (k8s.io/apimachinery generated.proto); managedFields are not read (the server keeps its own). */
function objectMeta(f: Fields | undefined): Record<string, unknown> {
  if (!f) return {};
  const created = msg(f, 8);
  return compact({
    name: nonEmpty(str(f, 1)),
    generateName: nonEmpty(str(f, 2)),
    namespace: nonEmpty(str(f, 3)),
    uid: nonEmpty(str(f, 5)),
    resourceVersion: nonEmpty(str(f, 6)),
    generation: num(f, 7) || undefined,
    // An unset Time is still written (an empty message): no time.
    creationTimestamp:
      created && num(created, 1)
        ? new Date(Number(num(created, 1)) * 1000).toISOString().replace(/\.\d{3}Z$/, "Z")
        : undefined,
    labels: map(f, 11),
    annotations: map(f, 12),
    ownerReferences: f.has(13)
      ? (f.get(13) ?? []).map((b) => {
          const r = readFields(b as Buffer);
          return compact({
            kind: str(r, 1),
            name: str(r, 3),
            uid: str(r, 4),
            apiVersion: str(r, 5),
            controller: num(r, 6) === 1 ? true : undefined,
          });
        })
      : undefined,
    finalizers: f.has(14) ? strs(f, 14) : undefined,
  });
}

/**
 * gogo-protobuf writes every non-pointer field, so an unset string comes as "" and an unset number
 * as 0: those mean "absent". A field we do not decode that carries a value is refused by name, so
 * a client never gets an object silently missing part of what it sent.
 */
function only(f: Fields, known: readonly number[], where: string): void {
  for (const [n, values] of f) {
    if (known.includes(n)) continue;
    const empty = values.every((v) => (typeof v === "bigint" ? v === 0n : v.length === 0));
    if (!empty) {
      throw apiError(
        ApiErrorCode.UNSUPPORTED_MEDIA_TYPE,
        `protobuf field ${n} of ${where} is not decoded by this test API server; send application/json`,
      );
    }
  }
}

const nonEmpty = (s: string | undefined) => (s === "" ? undefined : s);

function intOrString(f: Fields | undefined): number | string | undefined {
  if (!f) return undefined;
  return num(f, 1) === 1 ? str(f, 3) : (num(f, 2) ?? 0);
}

function labelSelector(f: Fields | undefined): Record<string, unknown> | undefined {
  if (!f) return undefined;
  only(f, [1, 2], "LabelSelector");
  return compact({
    matchLabels: map(f, 1),
    matchExpressions: f.has(2)
      ? (f.get(2) ?? []).map((b) => {
          const e = readFields(b as Buffer);
          return { key: str(e, 1), operator: str(e, 2), values: strs(e, 3) };
        })
      : undefined,
  });
}

/** Container: what `kubectl create deployment` sends (name, image, command, args, ports, env, resources). */
function container(f: Fields): Record<string, unknown> {
  only(f, [1, 2, 3, 4, 5, 6, 7, 8, 13, 14, 20], "Container");
  const resources = msg(f, 8);
  const quantities = (n: number) =>
    resources?.has(n)
      ? Object.fromEntries(
          (resources.get(n) ?? []).map((b) => {
            const kv = readFields(b as Buffer);
            const q = msg(kv, 2);
            return [str(kv, 1) ?? "", q ? (str(q, 1) ?? "") : ""];
          }),
        )
      : undefined;
  return compact({
    name: str(f, 1),
    image: nonEmpty(str(f, 2)),
    command: f.has(3) ? strs(f, 3) : undefined,
    args: f.has(4) ? strs(f, 4) : undefined,
    workingDir: nonEmpty(str(f, 5)),
    ports: f.has(6)
      ? (f.get(6) ?? []).map((b) => {
          const p = readFields(b as Buffer);
          return compact({
            name: nonEmpty(str(p, 1)),
            hostPort: num(p, 2) || undefined,
            containerPort: num(p, 3),
            protocol: nonEmpty(str(p, 4)),
          });
        })
      : undefined,
    env: f.has(7)
      ? (f.get(7) ?? []).map((b) => {
          const e = readFields(b as Buffer);
          only(e, [1, 2], "EnvVar");
          return { name: str(e, 1), value: str(e, 2) ?? "" };
        })
      : undefined,
    resources: resources ? compact({ limits: quantities(1), requests: quantities(2) }) : undefined,
    terminationMessagePath: nonEmpty(str(f, 13)),
    imagePullPolicy: nonEmpty(str(f, 14)),
    terminationMessagePolicy: nonEmpty(str(f, 20)),
  });
}

function podSpec(f: Fields | undefined): Record<string, unknown> {
  if (!f) return {};
  only(f, [2, 3, 4, 6, 7, 8, 9, 10, 11, 19], "PodSpec");
  return compact({
    containers: (f.get(2) ?? []).map((b) => container(readFields(b as Buffer))),
    restartPolicy: nonEmpty(str(f, 3)),
    terminationGracePeriodSeconds: num(f, 4),
    dnsPolicy: nonEmpty(str(f, 6)),
    nodeSelector: map(f, 7),
    serviceAccountName: nonEmpty(str(f, 8)),
    serviceAccount: nonEmpty(str(f, 9)),
    nodeName: nonEmpty(str(f, 10)),
    hostNetwork: num(f, 11) === 1 ? true : undefined,
    schedulerName: nonEmpty(str(f, 19)),
  });
}

function podTemplate(f: Fields | undefined): Record<string, unknown> | undefined {
  if (!f) return undefined;
  return { metadata: objectMeta(msg(f, 1)), spec: podSpec(msg(f, 2)) };
}

// Per kind: how the message's fields become JSON (field numbers from k8s.io/api generated.proto).
const DECODERS: Record<string, (f: Fields) => Record<string, unknown>> = {
  TokenRequest: (f) => {
    const spec = msg(f, 2);
    const ref = spec ? msg(spec, 3) : undefined;
    return {
      metadata: objectMeta(msg(f, 1)),
      spec: spec
        ? compact({
            audiences: spec.has(1) ? strs(spec, 1) : undefined,
            expirationSeconds: num(spec, 4),
            boundObjectRef: ref
              ? compact({ kind: str(ref, 1), apiVersion: str(ref, 2), name: str(ref, 3), uid: str(ref, 4) })
              : undefined,
          })
        : {},
    };
  },
  // helm keeps releases in Secrets and writes them through client-go's typed (protobuf) client.
  Secret: (f) =>
    compact({
      metadata: objectMeta(msg(f, 1)),
      data: map(f, 2, true),
      type: str(f, 3),
      stringData: map(f, 4),
      immutable: f.has(5) ? num(f, 5) === 1 : undefined,
    }),
  // `kubectl create namespace` posts through the typed client too.
  Namespace: (f) => {
    const spec = msg(f, 2);
    return compact({
      metadata: objectMeta(msg(f, 1)),
      spec: spec?.has(1) ? { finalizers: strs(spec, 1) } : undefined,
    });
  },
  ConfigMap: (f) =>
    compact({ metadata: objectMeta(msg(f, 1)), data: map(f, 2), binaryData: map(f, 3, true) }),
  // `kubectl create deployment` (apps/v1 generated.proto; status is the server's and not read).
  Deployment: (f) => {
    const spec = msg(f, 2);
    if (!spec) return { metadata: objectMeta(msg(f, 1)) };
    only(spec, [1, 2, 3, 4, 5, 6, 7, 9], "DeploymentSpec");
    const strategy = msg(spec, 4);
    const rolling = strategy ? msg(strategy, 2) : undefined;
    return {
      metadata: objectMeta(msg(f, 1)),
      spec: compact({
        replicas: num(spec, 1),
        selector: labelSelector(msg(spec, 2)),
        template: podTemplate(msg(spec, 3)),
        strategy: strategy?.has(1)
          ? compact({
              type: nonEmpty(str(strategy, 1)),
              rollingUpdate: rolling
                ? compact({
                    maxUnavailable: intOrString(msg(rolling, 1)),
                    maxSurge: intOrString(msg(rolling, 2)),
                  })
                : undefined,
            })
          : undefined,
        minReadySeconds: num(spec, 5) || undefined,
        revisionHistoryLimit: num(spec, 6),
        paused: num(spec, 7) === 1 ? true : undefined,
        progressDeadlineSeconds: num(spec, 9),
      }),
    };
  },
  DeleteOptions: (f) => {
    const pre = msg(f, 2);
    return compact({
      gracePeriodSeconds: num(f, 1),
      preconditions: pre ? compact({ uid: str(pre, 1), resourceVersion: str(pre, 2) }) : undefined,
      propagationPolicy: str(f, 4),
    });
  },
};

/** Decodes a protobuf request body into the JSON object it stands for. */
export function decodeProtobufBody(body: Buffer): unknown {
  if (body.subarray(0, 4).compare(MAGIC) !== 0) throw badRequest("protobuf body without the k8s envelope");
  const unknown = readFields(body.subarray(4));
  const typeMeta = msg(unknown, 1);
  const apiVersion = typeMeta ? str(typeMeta, 1) : undefined;
  const kind = typeMeta ? str(typeMeta, 2) : undefined;
  const raw = unknown.get(2)?.[0];
  const decode = kind === undefined ? undefined : DECODERS[kind];
  if (!decode || !Buffer.isBuffer(raw)) {
    throw apiError(
      ApiErrorCode.UNSUPPORTED_MEDIA_TYPE,
      `protobuf bodies are accepted for ${Object.keys(DECODERS).join(", ")} only (got ${kind ?? "nothing"}); send application/json`,
    );
  }
  return { apiVersion, kind, ...decode(readFields(raw)) };
}

function lengthDelimited(field: number, payload: Buffer): Buffer {
  const varint: number[] = [];
  let n = payload.length;
  do {
    varint.push((n & 0x7f) | (n > 0x7f ? 0x80 : 0));
    n >>>= 7;
  } while (n > 0);
  return Buffer.concat([Buffer.from([(field << 3) | 2, ...varint]), payload]);
}

/**
 * /openapi/v2 as kubectl asks for it (gnostic `openapi.v2.Document`, protobuf): `swagger` = 1,
 * `info` = 2 {title 1, version 2}, no definitions. kubectl only falls back to these schemas for a
 * kind whose group the /openapi/v3 index lacks (a custom resource applied with its CRD), and it
 * skips validating kinds it finds no schema for, as it does for schema-less CRDs.
 */
export function encodeOpenApiV2Document(version: string): Buffer {
  const info = Buffer.concat([
    lengthDelimited(1, Buffer.from("Kubernetes")),
    lengthDelimited(2, Buffer.from(version)),
  ]);
  return Buffer.concat([lengthDelimited(1, Buffer.from("2.0")), lengthDelimited(2, info)]);
}
