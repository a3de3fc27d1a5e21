// One attempt of a request at one endpoint, as the protocol senders (send-http1.ts, send-h2.ts)
// report it to the retry loop: the upstream's answer, or a typed failure with the facts Envoy's
// retryOn conditions read and whether it failed on a pooled connection before any answer (stale).

import type { IncomingHttpHeaders } from "node:http";
import type { Duplex, Readable } from "node:stream";
import type { AmbientError } from "@ambient/core";
import type { EndpointPick, RetryOutcomeFacts } from "../stages.js";
import type { ReplayBody } from "./body.js";

/** What goes upstream, already through routing (rewrites, header edits). */
export interface AttemptRequest {
  method: string;
  path: string;
  /** Host / :authority. */
  authority: string;
  /** Lowercase names, hop-by-hop headers removed. */
  headers: Record<string, string>;
  /** HTTP/1.1 upgrade protocols to ask the upstream for; empty: none. */
  upgrade: string[];
}

export interface UpstreamResponse {
  status: number;
  /** As received; HTTP/2 pseudo-headers included. */
  headers: IncomingHttpHeaders;
  body: Readable;
  /** HTTP/2: trailers, when the upstream sends them (gRPC status). */
  onTrailers?(listener: (trailers: IncomingHttpHeaders) => void): void;
  /** grpc-status of a trailers-only answer, for the retry policy. */
  grpcStatus?: number;
  /** 101: the upstream connection for raw bytes, and what came after the 101 head. */
  upgrade?: { socket: Duplex; head: Buffer };
  /** Drops this answer: the stream is reset and the request body no longer goes to it. */
  discard(): void;
}

export type AttemptResult =
  | { ok: true; response: UpstreamResponse }
  | {
      ok: false;
      error: AmbientError;
      facts: RetryOutcomeFacts;
      /** Failed on a reused connection before any answer: safe to send again on a fresh one. */
      stale: boolean;
    };

/** Sends one attempt; `fresh` asks for a new connection (the pooled one just failed). */
export type Sender = (
  endpoint: EndpointPick,
  request: AttemptRequest,
  body: ReplayBody,
  signal: AbortSignal,
  opts: { fresh?: boolean },
) => Promise<AttemptResult>;
