// The mesh for the "full" path, in its own process so the load generator never shares its event
// loop: LocalMesh (control plane, the ztunnels of node-a and node-b, the waypoint) on a manifests
// folder. Prints "ready" once every ztunnel and the waypoint are ready, then runs until SIGTERM.
// Usage (run.mjs starts it): node bench/waypoint/mesh.mjs --dir MANIFESTS --state STATE [--log-level error]

import { createLogger } from "@ambient/core";
import { LocalMesh } from "@ambient/testbed";

const args = {};
for (let i = 2; i < process.argv.length; i += 2)
  args[process.argv[i].replace(/^--/, "")] = process.argv[i + 1];
if (!args.dir || !args.state) {
  process.stderr.write(
    "usage: node bench/waypoint/mesh.mjs --dir MANIFESTS --state STATE [--log-level error]\n",
  );
  process.exit(2);
}

let mesh;
let stopping = false;
function stop(code) {
  if (stopping) return;
  stopping = true;
  void (async () => {
    // A stop that hangs must not hold the benchmark (run.mjs would SIGKILL us 15 s after SIGTERM).
    const timer = setTimeout(() => {
      process.stderr.write("mesh.stop() did not finish within 10 s\n");
      process.exit(1);
    }, 10_000);
    try {
      await mesh?.stop();
    } catch (err) {
      process.stderr.write(`mesh.stop() failed: ${err?.stack ?? err}\n`);
      code = 1;
    }
    clearTimeout(timer);
    process.exit(code);
  })();
}
process.on("SIGTERM", () => stop(0));
process.on("SIGINT", () => stop(0));
process.on("disconnect", () => stop(0));

try {
  const logLevel = args["log-level"] ?? "error";
  mesh = await LocalMesh.start({
    dir: args.dir,
    listen: { host: "127.0.0.1", port: 0 },
    stateDir: args.state,
    logLevel,
    // To stderr, which run.mjs writes to logs/mesh.log and checks: stdout carries only "ready".
    logger: createLogger({ level: logLevel, name: "ambient-local", destination: process.stderr }),
  });
  await mesh.settled(30_000);
  process.stdout.write("ready\n");
} catch (err) {
  process.stderr.write(`mesh failed to start: ${err?.stack ?? err}\n`);
  stop(1);
}
