// The one place @peculiar/x509 is imported: it needs the Reflect metadata API installed before it
// loads (its dependency tsyringe checks at import time) and a WebCrypto provider before first use.
// Import `x509` from here, never from the package, so both are guaranteed.

import "reflect-metadata";
import { webcrypto } from "node:crypto";
import * as x509 from "@peculiar/x509";

// Node's WebCrypto is OpenSSL underneath. (The cast: the typings name the DOM `Crypto`, which a
// Node-only project does not declare.)
x509.cryptoProvider.set(webcrypto as never);

export { x509 };
