// In-pod capture rules and the host probe SNAT (iptables), and their reconciler.
export { IptablesRedirection } from "./redirection.js";
