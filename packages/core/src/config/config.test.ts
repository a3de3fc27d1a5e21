import { describe, expect, it } from "vitest";
import { type OptionSpec, parseDuration, parseHostPort, parseOptions } from "./config.js";

const SPECS: OptionSpec[] = [
  { flag: "listen", env: "LISTEN", kind: "hostport", default: "127.0.0.1:15010", description: "" },
  { flag: "node", env: "NODE_NAME", kind: "string", required: true, description: "" },
  { flag: "drain", kind: "duration", default: "25s", description: "" },
  { flag: "verbose", kind: "bool", default: "false", description: "" },
  { flag: "workers", kind: "int", default: "2", description: "" },
];

describe("parseOptions", () => {
  it("takes flags over env over defaults, from an injected env", () => {
    const { values, positionals } = parseOptions(
      SPECS,
      ["up", "--listen=0.0.0.0:1", "--verbose", "--workers", "4"],
      { NODE_NAME: "node-1", LISTEN: "1.2.3.4:5" },
    );
    expect(values).toEqual({
      listen: { host: "0.0.0.0", port: 1 },
      node: "node-1",
      drain: 25_000,
      verbose: true,
      workers: 4,
    });
    expect(positionals).toEqual(["up"]);
  });

  it("reports every problem at once, naming the flag or env variable", () => {
    let message = "";
    try {
      parseOptions(
        SPECS,
        ["--listen", "nope", "--drain", "forever", "--bogus", "x", "--workers", "many"],
        {},
      );
    } catch (err) {
      expect((err as { code: string }).code).toBe("AMB_CONFIG_INVALID");
      message = (err as Error).message;
    }
    expect(message).toContain('--listen: "nope" is not HOST:PORT');
    expect(message).toContain('--drain: "forever" is not a duration');
    expect(message).toContain("unknown flag --bogus");
    expect(message).toContain('--workers: "many" is not an integer');
    expect(message).toContain("--node (or $NODE_NAME) is required");
  });

  it("names the env variable when the bad value came from the environment", () => {
    expect(() => parseOptions(SPECS, [], { NODE_NAME: "n", LISTEN: "x" })).toThrow(
      /\$LISTEN: "x" is not HOST:PORT/,
    );
  });
});

describe("parseDuration / parseHostPort", () => {
  it("reads Go-style durations", () => {
    expect(parseDuration("1.5s")).toBe(1500);
    expect(parseDuration("1h30m")).toBe(5_400_000);
    expect(parseDuration("250ms")).toBe(250);
    expect(parseDuration("10")).toBeUndefined();
    expect(parseDuration("5s junk")).toBeUndefined();
  });

  it("reads IPv4, IPv6 and empty hosts", () => {
    expect(parseHostPort("[::1]:15008")).toEqual({ host: "::1", port: 15008 });
    expect(parseHostPort(":80")).toEqual({ host: "0.0.0.0", port: 80 });
    expect(parseHostPort("host:70000")).toBeUndefined();
  });
});
