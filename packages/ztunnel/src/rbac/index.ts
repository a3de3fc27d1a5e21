// rbac: ztunnel's L4 authorization. PolicyIndex picks the Authorizations that apply to a
// destination workload; evaluate() decides one connection against them; explain() logs why.

export {
  type ConnectionFacts,
  type Decision,
  evaluate,
  explain,
} from "./evaluate.js";
export { PolicyIndex } from "./policy-index.js";
