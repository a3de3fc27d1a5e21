// Kubernetes' LabelSelector (metav1): the one matcher for Gateway allowedRoutes, workload
// controllers' selectors and anything else that selects objects by labels.

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: string; values?: string[] }[];
}

/** Every matchLabels pair and every expression must hold; an unknown operator matches nothing. */
export function matchesLabelSelector(
  selector: LabelSelector,
  labels: Readonly<Record<string, string>> | undefined,
): boolean {
  const have = labels ?? {};
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (have[k] !== v) return false;
  for (const { key, operator, values = [] } of selector.matchExpressions ?? []) {
    const value = have[key];
    const ok =
      operator === "In"
        ? value !== undefined && values.includes(value)
        : operator === "NotIn"
          ? value === undefined || !values.includes(value)
          : operator === "Exists"
            ? value !== undefined
            : operator === "DoesNotExist"
              ? value === undefined
              : false;
    if (!ok) return false;
  }
  return true;
}
