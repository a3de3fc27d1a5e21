// PEM text <-> DER bytes. Strict on purpose: Buffer.from(x, "base64") silently skips garbage, and a
// CA or verifier that "mostly" decodes a file hides a corrupted secret until the first handshake.

export interface PemBlock {
  label: string;
  der: Buffer;
}

const BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----([^-]*)-----END ([A-Z0-9 ]+)-----/g;
const BASE64_BODY = /^[A-Za-z0-9+/\s]*={0,2}\s*$/;

/**
 * Every PEM block in `text`, in order. Text between blocks is ignored (openssl writes "Bag
 * Attributes" and comments there). Throws a plain Error describing the first bad block; callers
 * wrap it in their own typed error with the file or field it came from.
 */
export function decodePemBlocks(text: string): PemBlock[] {
  const blocks: PemBlock[] = [];
  for (const m of text.matchAll(BLOCK)) {
    const [, begin, body, end] = m as unknown as [string, string, string, string];
    if (begin !== end) throw new Error(`PEM block "BEGIN ${begin}" ends with "END ${end}"`);
    if (!BASE64_BODY.test(body)) throw new Error(`PEM block "${begin}" has a body that is not base64`);
    const der = Buffer.from(body.replace(/\s+/g, ""), "base64");
    if (der.length === 0) throw new Error(`PEM block "${begin}" is empty`);
    blocks.push({ label: begin, der });
  }
  return blocks;
}

/** The DER bodies of all blocks labelled `label`; throws when there are none or others are mixed in. */
export function decodePemOfType(text: string, labels: readonly string[]): Buffer[] {
  const blocks = decodePemBlocks(text);
  if (blocks.length === 0) throw new Error(`no PEM block found (expected "BEGIN ${labels[0]}")`);
  const wrong = blocks.find((b) => !labels.includes(b.label));
  if (wrong) throw new Error(`found a "${wrong.label}" PEM block where only "${labels[0]}" is expected`);
  return blocks.map((b) => b.der);
}

export function encodePem(label: string, der: Uint8Array | ArrayBuffer): string {
  const b64 = Buffer.from(der instanceof ArrayBuffer ? new Uint8Array(der) : der).toString("base64");
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}

/** Splits a bundle (root-cert.pem, cert-chain.pem) into one normalized PEM string per certificate. */
export function splitCertificatePems(text: string): string[] {
  return decodePemOfType(text, ["CERTIFICATE"]).map((der) => encodePem("CERTIFICATE", der));
}

/** Canonical PEM form of one certificate, so equal certificates compare equal as strings. */
function normalizeCertificatePem(pem: string): string {
  const certs = splitCertificatePems(pem);
  if (certs.length !== 1) throw new Error(`expected one certificate, found ${certs.length}`);
  return certs[0]!;
}
