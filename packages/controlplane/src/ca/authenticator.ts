// Who is calling the CA. In local mode each node's ztunnel proves its node with a bootstrap token
// that the control plane generated into its state folder; in Kubernetes mode a TokenReview of the
// caller's service-account token (token-review.ts) says which account and pod is calling.

import { createHash, randomBytes } from "node:crypto";
import { chmod, mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { AmbientError, ErrorCode } from "@ambient/core";

/** A caller the CA trusts for some set of identities. */
export type Caller =
  /** Local mode: a node's ztunnel, by its bootstrap token. */
  | { kind: "node"; node: string }
  /** Kubernetes mode: a service account, and the pod its token is bound to (if it is). */
  | {
      kind: "serviceaccount";
      namespace: string;
      serviceAccount: string;
      pod?: { name: string; uid: string };
    };

export interface CallerAuthenticator {
  /** Resolves the caller from a bearer token; rejects with a typed refusal (ca/errors.ts). */
  authenticate(bearerToken: string | undefined): Promise<Caller>;
}

const TOKEN_DIR = "node-tokens";
const NODE_NAME_RE = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

/**
 * File-backed per-node tokens: `<stateDir>/node-tokens/<node>.token`, mode 0600, created for every
 * Node the control plane learns about and kept across restarts so running ztunnels stay valid.
 */
export class LocalTokenAuthenticator implements CallerAuthenticator {
  /** sha256(token) → node. Hashing first keeps lookups from leaking token bytes through timing. */
  private readonly byHash = new Map<string, string>();
  private readonly nodes = new Set<string>();

  private constructor(private readonly dir: string) {}

  static async open(stateDir: string): Promise<LocalTokenAuthenticator> {
    const dir = join(stateDir, TOKEN_DIR);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const auth = new LocalTokenAuthenticator(dir);
    for (const name of await readdir(dir)) {
      if (!name.endsWith(".token")) continue;
      const token = (await readFile(join(dir, name), "utf8")).trim();
      auth.remember(name.slice(0, -".token".length), token);
    }
    return auth;
  }

  static tokenPath(stateDir: string, node: string): string {
    return join(stateDir, TOKEN_DIR, `${node}.token`);
  }

  /** Creates tokens for nodes that have none yet; existing tokens are never rotated here. */
  async ensureNodes(nodes: Iterable<string>): Promise<void> {
    for (const node of nodes) {
      if (this.nodes.has(node) || !NODE_NAME_RE.test(node)) continue;
      const token = randomBytes(32).toString("base64url");
      const path = join(this.dir, `${node}.token`);
      await writeFile(path, `${token}\n`, { mode: 0o600 });
      await chmod(path, 0o600);
      this.remember(node, token);
    }
  }

  async authenticate(bearerToken: string | undefined): Promise<Caller> {
    if (!bearerToken) {
      throw new AmbientError(
        ErrorCode.UNAUTHENTICATED,
        "no bearer token: send `authorization: Bearer <node token>`",
      );
    }
    const node = this.byHash.get(hash(bearerToken));
    if (!node) throw new AmbientError(ErrorCode.UNAUTHENTICATED, "bearer token is not a known node token");
    return { kind: "node", node };
  }

  private remember(node: string, token: string): void {
    this.nodes.add(node);
    this.byHash.set(hash(token), node);
  }
}

function hash(token: string): string {
  return createHash("sha256").update(token).digest("base64url");
}

/** The token of a gRPC call's `authorization: Bearer <token>` metadata. */
export function bearerOf(metadata: { get(key: string): (string | Buffer)[] }): string | undefined {
  const header = metadata.get("authorization")[0];
  if (!header) return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header.toString());
  return m?.[1];
}
