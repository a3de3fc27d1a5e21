#!/usr/bin/env -S node --max-semi-space-size=4
// --max-semi-space-size=4: a 2 × 4 MiB young generation instead of Node's 2 × 16 MiB. Measured with
// bench/ztunnel (bench/README "Issue 13 status"): RSS with 1,000 open connections and at peak about
// 15-20% lower, back to idle sooner after a load, for more frequent scavenges (CPU per GB up to ~15%).
// The harness and the benches read these flags from here (testbed nodeArgv), so they run it alike.
import { main } from "../dist/main.js";

process.exitCode = await main(process.argv.slice(2), process.env);
