// Turns one translation result into xDS resources in the ResourceStore. The store diffs by
// content hash, so unchanged objects cost nothing on the wire and one reload is one push batch.

import {
  ADDRESS_TYPE_URL,
  AUTHORIZATION_TYPE_URL,
  addressResourceName,
  authorizationResourceName,
  encodeAddress,
  encodeAuthorization,
  type ResourceStore,
} from "@ambient/core";
import type { TranslateResult } from "../translate/index.js";

export interface PublishSummary {
  workloads: number;
  services: number;
  authorizations: number;
}

export function publish(store: ResourceStore, result: TranslateResult): PublishSummary {
  const addresses = new Map<string, Uint8Array>();
  for (const workload of result.workloads) {
    const address = { workload };
    addresses.set(addressResourceName(address), encodeAddress(address));
  }
  for (const service of result.services) {
    const address = { service };
    addresses.set(addressResourceName(address), encodeAddress(address));
  }
  const authorizations = new Map<string, Uint8Array>();
  for (const auth of result.authorizations) {
    authorizations.set(authorizationResourceName(auth), encodeAuthorization(auth));
  }
  store.replaceAll(ADDRESS_TYPE_URL, addresses);
  store.replaceAll(AUTHORIZATION_TYPE_URL, authorizations);
  return {
    workloads: result.workloads.length,
    services: result.services.length,
    authorizations: result.authorizations.length,
  };
}

/** node name → SPIFFE IDs of the pods scheduled there: what that node's ztunnel may ask the CA for. */
export function nodeIdentityIndex(result: TranslateResult): Map<string, Set<string>> {
  const index = new Map<string, Set<string>>();
  for (const w of result.workloads) {
    if (!w.node) continue;
    let set = index.get(w.node);
    if (!set) {
      set = new Set();
      index.set(w.node, set);
    }
    set.add(`spiffe://${w.trustDomain}/ns/${w.namespace}/sa/${w.serviceAccount}`);
  }
  return index;
}
