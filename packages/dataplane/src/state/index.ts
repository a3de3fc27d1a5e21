// ztunnel's state: what xDS delivered, indexed for the data path, with endpoint selection and
// JSON views for the admin endpoint.
export { ProxyState } from "./proxy-state.js";
export { workloadIdentity } from "./workload.js";
