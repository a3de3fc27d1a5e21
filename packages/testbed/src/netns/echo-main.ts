// Entry point: the echo server of one netns-mode pod (see echo-app.ts). Started by the harness
// inside the pod's netns; prints one JSON line with ECHO_READY_MESSAGE once every port is bound,
// and closes cleanly on SIGTERM.
//
//   node packages/ctl/dist/netns/echo-main.js --pod P --namespace N --service-account SA \
//     --node NODE --ports 9080,8080 [--host 0.0.0.0]

import { EchoServer } from "../local/echo-server.js";
import { ECHO_READY_MESSAGE, type EchoAppArgs, parseEchoArgs } from "./echo-app.js";

async function main(): Promise<void> {
  let args: Required<EchoAppArgs>;
  try {
    args = parseEchoArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`echo-main: ${(err as Error).message}\n`);
    process.exit(2);
  }
  const server = new EchoServer({
    pod: args.pod,
    namespace: args.namespace,
    serviceAccount: args.serviceAccount,
    node: args.node,
  });
  for (const port of args.ports) await server.listen(args.host, port);
  const stop = () => {
    server.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
  const ready = {
    msg: ECHO_READY_MESSAGE,
    pod: `${args.namespace}/${args.pod}`,
    host: args.host,
    ports: args.ports,
  };
  process.stdout.write(`${JSON.stringify(ready)}\n`);
}

main().catch((err) => {
  process.stderr.write(`echo-main: ${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
