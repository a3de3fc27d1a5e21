// The plugin is copied alone into the node's CNI bin dir and exec'd per pod sandbox: its modules
// may import only node builtins and each other (no @ambient/*, no pino), or the copy breaks and
// start-up slows down.
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const dir = fileURLToPath(new URL(".", import.meta.url));

describe("the plugin is self-contained", () => {
  it("imports only node: builtins and ./ siblings", () => {
    const sources = readdirSync(dir).filter((n) => n.endsWith(".ts") && !n.endsWith(".test.ts"));
    expect(sources).toContain("main.ts");
    for (const name of sources) {
      const text = readFileSync(`${dir}${name}`, "utf8");
      for (const [, spec] of text.matchAll(/(?:from|import)\s*\(?\s*"([^"]+)"/g)) {
        expect(spec, `${name} imports ${spec}`).toMatch(/^(node:|\.\/[\w-]+\.js$)/);
      }
    }
  });
});
