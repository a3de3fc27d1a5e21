import { describe, expect, it } from "vitest";
import { renderTable } from "./table.js";

describe("renderTable", () => {
  it("pads columns to the widest cell and trims the last", () => {
    expect(
      renderTable(
        ["NAME", "IP"],
        [
          ["a", "127.0.0.1"],
          ["longer-name", "-"],
        ],
      ),
    ).toBe("NAME          IP\na             127.0.0.1\nlonger-name   -");
  });
});
