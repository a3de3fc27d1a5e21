// Checks a chain the CA just issued before ztunnel serves with it: it verifies up to a root, names
// exactly the identity asked for, and certifies the key this ztunnel generated. A CA answer that
// fails any of these is an error like a refusal, and is retried.

import { createPrivateKey, X509Certificate } from "node:crypto";
import {
  AmbientError,
  ErrorCode,
  errorMessage,
  findCode,
  type SpiffeId,
  verifyWorkloadChain,
} from "@ambient/core";

export interface IssuedChainOptions {
  trustDomain: string;
  now: Date;
  /** Trust anchors; when omitted the chain's own last certificate (the CA's root) is the anchor. */
  rootsPem?: readonly string[];
}

export interface IssuedCertificateFacts {
  serial: string;
  notBefore: Date;
  notAfter: Date;
}

/** Throws an AmbientError (the verifier's CERT_* code) saying what is wrong with the CA's answer. */
export function verifyIssuedChain(
  id: SpiffeId,
  chainPem: readonly string[],
  privateKeyPem: string,
  opts: IssuedChainOptions,
): IssuedCertificateFacts {
  const unusable = (message: string, code: string = ErrorCode.CERT_MALFORMED, cause?: unknown) =>
    new AmbientError(code, `CA returned an unusable certificate for ${id}: ${message}`, {
      cause,
      details: { identity: id.toString(), chainLength: chainPem.length },
    });

  if (chainPem.length === 0) throw unusable("the chain is empty", ErrorCode.CERT_CHAIN_EMPTY);
  // Without configured anchors a lone leaf would be "verified" against itself.
  if (!opts.rootsPem && chainPem.length < 2) {
    throw unusable(
      "the chain holds only the leaf; expected the leaf and the CA's root",
      ErrorCode.CERT_WRONG_ISSUER,
    );
  }
  const roots = opts.rootsPem ?? [chainPem[chainPem.length - 1]!];

  let verified: ReturnType<typeof verifyWorkloadChain>;
  try {
    verified = verifyWorkloadChain(chainPem, roots, { trustDomain: opts.trustDomain, now: opts.now });
  } catch (err) {
    throw unusable(errorMessage(err), findCode(err) ?? ErrorCode.CERT_MALFORMED, err);
  }
  if (!verified.identity.equals(id)) {
    throw unusable(`the leaf is for ${verified.identity}`, ErrorCode.CERT_NO_SPIFFE_SAN);
  }
  let keyMatches: boolean;
  try {
    keyMatches = new X509Certificate(chainPem[0]!).checkPrivateKey(createPrivateKey(privateKeyPem));
  } catch (err) {
    throw unusable(
      `cannot compare the leaf's key with ours (${errorMessage(err)})`,
      ErrorCode.CERT_MALFORMED,
      err,
    );
  }
  if (!keyMatches) throw unusable("the leaf certifies another key than the one in our CSR");
  return { serial: verified.serial, notBefore: verified.notBefore, notAfter: verified.notAfter };
}
