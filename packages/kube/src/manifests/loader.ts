// Reads a folder of Kubernetes manifests: every *.yaml / *.yml file below it, each possibly
// holding several documents. Parsing never throws: a broken file or document becomes a problem
// that names the file, the document index and (when YAML knows it) the line.

import { readdir, readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { join, relative } from "node:path";
import { parseAllDocuments } from "yaml";
import type { SourceProblem, SourceRef } from "../source.js";

// js-yaml's CommonJS build parses our 10,000-pod bench folder in ~300 ms, its ESM build in ~700 ms
// (same version, same input, measured side by side), so load the CommonJS one.
const { loadAll } = createRequire(import.meta.url)("js-yaml") as typeof import("js-yaml");

export interface LoadedDocument {
  source: SourceRef;
  /** The parsed document; validation decides whether it is a usable object. */
  value: unknown;
}

/** A problem found while loading a folder (parse errors; validation adds its own). */
export type ManifestProblem = SourceProblem;

export interface FileLoad {
  file: string;
  /** False when the file as a whole could not be read or parsed; its objects keep their last good state. */
  ok: boolean;
  documents: LoadedDocument[];
  problems: ManifestProblem[];
}

const MANIFEST_RE = /\.ya?ml$/i;

/** Lists manifest files below `dir`, sorted, skipping dot-folders (editor swap dirs, .git). */
export async function listManifestFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  async function walk(current: string): Promise<void> {
    const entries = await readdir(current, { withFileTypes: true });
    for (const e of entries) {
      if (e.name.startsWith(".")) continue;
      const full = join(current, e.name);
      if (e.isDirectory()) await walk(full);
      else if (e.isFile() && MANIFEST_RE.test(e.name)) out.push(full);
    }
  }
  await walk(dir);
  return out.map((f) => relative(dir, f).split("\\").join("/")).sort();
}

export async function loadFile(dir: string, file: string): Promise<FileLoad> {
  let text: string;
  try {
    text = await readFile(join(dir, file), "utf8");
  } catch (err) {
    return {
      file,
      ok: false,
      documents: [],
      problems: [
        {
          source: { file, index: 0 },
          path: "",
          message: `cannot read: ${(err as Error).message}`,
          code: "AMB_MANIFEST_PARSE",
        },
      ],
    };
  }
  return parseManifestText(file, text);
}

/** An alias (`*name`) in a file sends it down the careful path, which caps alias expansion. */
const ALIAS_RE = /(^|[\s[{,:-])\*[A-Za-z0-9_.-]+/m;

/**
 * Two parsers, one for speed and one for diagnostics. js-yaml parses large folders about ten times
 * faster than `yaml` (bench/README.md: 10,000 pods); when it fails, or when the file uses aliases,
 * `yaml` parses again to say which document and line is broken and to bound alias expansion.
 */
export function parseManifestText(file: string, text: string): FileLoad {
  if (!ALIAS_RE.test(text)) {
    try {
      const values = loadAll(text, null, { filename: file });
      return { file, ok: true, documents: toDocuments(file, values), problems: [] };
    } catch {
      // fall through: the careful parser explains what is wrong
    }
  }
  return parseCarefully(file, text);
}

function toDocuments(file: string, values: unknown[]): LoadedDocument[] {
  const documents: LoadedDocument[] = [];
  for (const [index, value] of values.entries()) pushDocument(documents, { file, index }, value);
  return documents;
}

function pushDocument(documents: LoadedDocument[], source: SourceRef, value: unknown): void {
  if (value === null || value === undefined) return; // empty document, e.g. a trailing `---`
  if (typeof value === "object" && !Array.isArray(value) && (value as { kind?: unknown }).kind === "List") {
    // `kubectl get -o yaml` writes a List; unpack it so exported state can be fed back in.
    const items = (value as { items?: unknown }).items;
    if (Array.isArray(items)) for (const item of items) documents.push({ source, value: item });
    return;
  }
  documents.push({ source, value });
}

function parseCarefully(file: string, text: string): FileLoad {
  const documents: LoadedDocument[] = [];
  const problems: ManifestProblem[] = [];
  // Document indices count documents as YAML sees them (a leading `---` starts document 0), the
  // same numbering in both parsers.
  const docs = parseAllDocuments(text, { prettyErrors: true, uniqueKeys: true });
  const list = Array.isArray(docs) ? docs : [docs];
  for (const [index, doc] of list.entries()) {
    const source = { file, index };
    if (doc.errors.length > 0) {
      for (const e of doc.errors) {
        const line = e.linePos?.[0] ? ` (line ${e.linePos[0].line}, column ${e.linePos[0].col})` : "";
        problems.push({
          source,
          path: "",
          message: `malformed YAML${line}: ${firstLine(e.message)}`,
          code: "AMB_MANIFEST_PARSE",
        });
      }
      continue;
    }
    try {
      pushDocument(documents, source, doc.toJS({ maxAliasCount: 100 }));
    } catch (err) {
      problems.push({
        source,
        path: "",
        message: `malformed YAML: ${(err as Error).message}`,
        code: "AMB_MANIFEST_PARSE",
      });
    }
  }
  // A syntax error anywhere makes the whole file suspect (a broken indent can swallow the next
  // document), so the file's previous objects stay in force until it parses again.
  return { file, ok: problems.length === 0, documents, problems };
}

function firstLine(s: string): string {
  return s.split("\n")[0] ?? s;
}
