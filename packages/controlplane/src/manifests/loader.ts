// Reads a folder of Kubernetes manifests: every *.yaml / *.yml file below it, each possibly
// holding several documents. Parsing never throws: a broken file or document becomes a problem
// that names the file, the document index and (when YAML knows it) the line.

import { readdir, readFile } from "node:fs/promises";
import { join, relative } from "node:path";
import { parseAllDocuments } from "yaml";

export interface SourceRef {
  /** Path relative to the manifests folder, with forward slashes. */
  file: string;
  /** 0-based index of the document inside the file. */
  index: number;
}

export interface LoadedDocument {
  source: SourceRef;
  /** The parsed document; validation decides whether it is a usable object. */
  value: unknown;
}

export interface ManifestProblem {
  source: SourceRef;
  /** Field path inside the object (`spec.rules[0].from`), empty for file-level problems. */
  path: string;
  message: string;
  code: string;
}

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
        { source: { file, index: 0 }, path: "", message: `cannot read: ${(err as Error).message}`, code: "AMB_MANIFEST_PARSE" },
      ],
    };
  }
  return parseManifestText(file, text);
}

export function parseManifestText(file: string, text: string): FileLoad {
  const documents: LoadedDocument[] = [];
  const problems: ManifestProblem[] = [];
  // Documents keep their index even when empty, so "document 3" means the same thing to the user
  // counting `---` separators and to us.
  const docs = parseAllDocuments(text, { prettyErrors: true, uniqueKeys: true });
  const list = Array.isArray(docs) ? docs : [docs];
  list.forEach((doc, index) => {
    const source = { file, index };
    if (doc.errors.length > 0) {
      for (const e of doc.errors) {
        const line = e.linePos?.[0] ? ` (line ${e.linePos[0].line}, column ${e.linePos[0].col})` : "";
        problems.push({ source, path: "", message: `malformed YAML${line}: ${firstLine(e.message)}`, code: "AMB_MANIFEST_PARSE" });
      }
      return;
    }
    const value = doc.toJS({ maxAliasCount: 100 });
    if (value === null || value === undefined) return; // empty document, e.g. trailing `---`
    if (typeof value === "object" && !Array.isArray(value) && (value as { kind?: unknown }).kind === "List") {
      // `kubectl get -o yaml` writes a List; unpack it so exported state can be fed back in.
      const items = (value as { items?: unknown }).items;
      if (Array.isArray(items)) for (const item of items) documents.push({ source, value: item });
      return;
    }
    documents.push({ source, value });
  });
  // A syntax error anywhere makes the whole file suspect (a broken indent can swallow the next
  // document), so the file's previous objects stay in force until it parses again.
  return { file, ok: problems.length === 0, documents, problems };
}

function firstLine(s: string): string {
  return s.split("\n")[0] ?? s;
}

export function formatSource(s: SourceRef): string {
  return `${s.file}#${s.index}`;
}
