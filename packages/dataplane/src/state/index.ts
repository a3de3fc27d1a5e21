// ztunnel's state: what xDS delivered, indexed for the data path, with endpoint selection and
// JSON views for the admin endpoint.
export { type PickOptions, RoundRobin } from "./load-balancer.js";
export {
  ProxyState,
  type ProxyStateOptions,
  type ResourceChanges,
  type StateChange,
  type StateListener,
} from "./proxy-state.js";
export type {
  AuthorizationJson,
  GatewayJson,
  MatchJson,
  ServiceJson,
  StateSnapshot,
  WorkloadJson,
} from "./snapshot.js";
export {
  DEFAULT_SERVICE_ACCOUNT,
  DEFAULT_TRUST_DOMAIN,
  type Endpoint,
  serviceKey,
  targetPortFor,
  workloadIdentity,
  workloadIps,
} from "./workload.js";
