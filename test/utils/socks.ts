// Tests use the same SOCKS5 client as `ambientctl up`'s demo.
export {
  httpGetViaSocks,
  httpViaSocks,
  SocksError,
  socksConnect,
} from "@ambient/testbed";
