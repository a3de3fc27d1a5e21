import { defineConfig } from "vitest/config";

export default defineConfig({
  resolve: {
    // Tests run against package sources, not dist: no build needed before `vitest`.
    conditions: ["@ambient/source"],
  },
  ssr: { resolve: { conditions: ["@ambient/source"] } },
  test: {
    include: ["packages/*/src/**/*.test.ts", "test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: "forks",
    reporters: ["default", "./test/summary-reporter.ts"],
  },
});
