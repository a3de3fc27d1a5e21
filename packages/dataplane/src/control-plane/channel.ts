// How a proxy dials its control plane: plaintext in local mode; in a pod, TLS verified against the
// mounted root (chain) and the server name (the address's host or CONTROL_PLANE_SAN), with the
// projected token as bearer. Both files are re-read on use, so rotation needs no restart: the
// next CA call and the next xDS (re)connect carry the new token, and a changed root makes a new
// channel (grpc-js fixes credentials per channel).

import { X509Certificate } from "node:crypto";
import { readFile } from "node:fs/promises";
import { AmbientError, type CredentialsSource, ErrorCode, errorMessage, parseHostPort } from "@ambient/core";
import { type ChannelCredentials, type ChannelOptions, credentials } from "@grpc/grpc-js";
import { readToken } from "../identity/token.js";
import type { ControlPlaneConfig } from "./options.js";

export class ControlPlaneChannel {
  private root: { pem: string; credentials: ChannelCredentials } | undefined;

  constructor(readonly config: ControlPlaneConfig) {}

  /** For the xDS and CA clients: undefined (plaintext), or TLS credentials from the root file now. */
  get credentials(): CredentialsSource | undefined {
    return this.config.tls ? () => this.tlsCredentials() : undefined;
  }

  /**
   * grpc-js checks the server certificate against the channel's host; the override makes it (and
   * SNI) the configured name instead, for an address that is an IP the certificate does not name.
   */
  get channelOptions(): ChannelOptions {
    return this.config.san ? { "grpc.ssl_target_name_override": this.config.san } : {};
  }

  /** The bearer token now; undefined when none is configured (local mode without tokens). */
  token(): Promise<string | undefined> {
    return readToken(this.config.tokenFile);
  }

  /** How the control plane is dialled, as a readiness reason refers to it; undefined for plaintext. */
  get via(): string | undefined {
    const c = this.config;
    if (!c.tls) return undefined;
    return `TLS: its certificate must name ${c.san ?? hostOf(c.xdsAddress)} and chain to ${c.rootCertFile}`;
  }

  /** For logs and /config_dump. */
  describe(): Record<string, unknown> {
    const c = this.config;
    return {
      xds: c.xdsAddress,
      ca: c.caAddress,
      tls: c.tls,
      ...(c.rootCertFile && { rootCert: c.rootCertFile }),
      ...(c.san && { san: c.san }),
      ...(c.tokenFile && { tokenFile: c.tokenFile }),
    };
  }

  private async tlsCredentials(): Promise<ChannelCredentials> {
    const file = this.config.rootCertFile!;
    const pem = await readRootCert(file);
    if (this.root?.pem !== pem) this.root = { pem, credentials: credentials.createSsl(Buffer.from(pem)) };
    return this.root.credentials;
  }
}

function hostOf(address: string): string {
  return parseHostPort(address)?.host ?? address;
}

/** The root file's PEM; AMB_ROOT_CERT_UNREADABLE naming the file when it is missing or holds no certificate. */
async function readRootCert(file: string): Promise<string> {
  let pem: string;
  try {
    pem = await readFile(file, "utf8");
  } catch (err) {
    throw new AmbientError(
      ErrorCode.ROOT_CERT_UNREADABLE,
      `cannot read the control plane root certificate ${file}: ${errorMessage(err)}`,
      { cause: err, details: { path: file } },
    );
  }
  try {
    // Node's X509Certificate reads the first PEM block; a later bad one fails createSsl's context.
    new X509Certificate(pem);
  } catch (err) {
    throw new AmbientError(
      ErrorCode.ROOT_CERT_UNREADABLE,
      `the control plane root certificate ${file} holds no PEM certificate: ${errorMessage(err)}`,
      { cause: err, details: { path: file } },
    );
  }
  return pem;
}
