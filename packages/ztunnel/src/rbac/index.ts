// rbac: ztunnel's L4 authorization. PolicyIndex picks the Authorizations that apply to a
// destination workload; evaluate() decides one connection against them; explain() logs why.

export {
  type ConnectionFacts,
  type Decision,
  type DecisionReason,
  type DryRunDecision,
  evaluate,
  explain,
  matches,
} from "./evaluate.js";
export { PolicyIndex, type PolicyTarget } from "./policy-index.js";
