// In-pod capture rules and the host probe SNAT (iptables), and their reconciler.
export { debianPackageOf, IptablesError, IptablesErrorCode, isNetnsGone, NetnsGoneError } from "./errors.js";
export { type Commands, DEFAULT_COMMANDS, DEFAULT_TIMEOUT_MS, type ExecOptions } from "./exec.js";
export { applyHostProbeRules, removeHostProbeRules } from "./host-probe.js";
export {
  type ApplyOutcome,
  applyInPodRules,
  type InPodOptions,
  type RemoveOutcome,
  removeInPodRules,
} from "./in-pod.js";
export { enableListenerHandoff, MIGRATE_REQ_SYSCTL } from "./listener-handoff.js";
export { countRules, saveRules } from "./reconcile.js";
export { IptablesRedirection, type IptablesRedirectionOptions, type PodNetwork } from "./redirection.js";
export {
  CHAIN_HOST_POSTROUTING,
  CHAIN_OUTPUT,
  CHAIN_PREROUTING,
  CONN_MARK,
  type Family,
  hostProbeRules,
  inPodRules,
  PORT_INBOUND_HBONE,
  PORT_INBOUND_PLAINTEXT,
  PORT_OUTBOUND,
  PROBE_SNAT_V4,
  PROBE_SNAT_V6,
  type RuleSet,
  renderRestore,
  ZTUNNEL_MARK,
} from "./rules.js";
