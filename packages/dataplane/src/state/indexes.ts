// Multi-valued index maps for ProxyState: a key (an IP, a node, a service) to the names filed
// under it. Empty entries are deleted so an index never grows with keys that once existed.

/** Set-valued: order does not matter (endpoints of a service, workloads of a node). */
export function addTo(index: Map<string, Set<string>>, key: string, value: string): void {
  const set = index.get(key);
  if (set) set.add(value);
  else index.set(key, new Set([value]));
}

export function removeFrom(index: Map<string, Set<string>>, key: string, value: string): void {
  const set = index.get(key);
  if (!set) return;
  set.delete(value);
  if (set.size === 0) index.delete(key);
}

/** List-valued, oldest first: the newest owner of a contested key is the last. */
export function addToList(index: Map<string, string[]>, key: string, value: string): void {
  const list = index.get(key);
  if (!list) index.set(key, [value]);
  else if (!list.includes(value)) list.push(value);
}

export function removeFromList(index: Map<string, string[]>, key: string, value: string): void {
  const list = index.get(key);
  if (!list) return;
  const i = list.indexOf(value);
  if (i >= 0) list.splice(i, 1);
  if (list.length === 0) index.delete(key);
}
