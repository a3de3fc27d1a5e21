// Finds the items (Services, policies) whose label selector matches a pod without scanning every
// item of the namespace: each selector is filed under one of its key=value pairs, so a pod only
// looks at items sharing at least one of its labels. 10,000 pods × 1,000 services stays linear.

interface NamespaceEntries<T> {
  /** Items whose selector is empty: they match every pod of the namespace. */
  all: T[];
  byLabel: Map<string, { selector: [string, string][]; item: T }[]>;
}

export class SelectorIndex<T> {
  private readonly namespaces = new Map<string, NamespaceEntries<T>>();

  /** Files `item` under `namespace`; an empty selector matches every pod there. */
  add(namespace: string, selector: Record<string, string>, item: T): void {
    let entries = this.namespaces.get(namespace);
    if (!entries) {
      entries = { all: [], byLabel: new Map() };
      this.namespaces.set(namespace, entries);
    }
    const pairs = Object.entries(selector).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const first = pairs[0];
    if (!first) {
      entries.all.push(item);
      return;
    }
    const key = `${first[0]}=${first[1]}`;
    const bucket = entries.byLabel.get(key);
    if (bucket) bucket.push({ selector: pairs, item });
    else entries.byLabel.set(key, [{ selector: pairs, item }]);
  }

  /**
   * Items in `namespace` whose selector is a subset of `labels`. Buckets are visited in the pod's
   * label order, so callers sort the result when order matters.
   */
  match(namespace: string, labels: Record<string, string>): T[] {
    const entries = this.namespaces.get(namespace);
    if (!entries) return [];
    const out = [...entries.all];
    for (const [k, v] of Object.entries(labels)) {
      const bucket = entries.byLabel.get(`${k}=${v}`);
      if (!bucket) continue;
      for (const { selector, item } of bucket) {
        if (selector.every(([sk, sv]) => labels[sk] === sv)) out.push(item);
      }
    }
    return out;
  }

  isEmpty(): boolean {
    return this.namespaces.size === 0;
  }
}
