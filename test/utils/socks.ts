// Tests use the same SOCKS5 client as `ambientctl up`'s demo.
export {
  type HttpResult,
  httpGetViaSocks,
  httpViaSocks,
  parseHttp,
  SocksError,
  socksConnect,
} from "@ambient/testbed";
