import type { Condition } from "./api.ts";

/**
 * Sets a condition in a list, as Kubernetes' meta.SetStatusCondition does: `lastTransitionTime` changes only when
 * the status does; reason, message and observedGeneration are always updated. Returns a new list.
 */
export function setCondition(
  list: Condition[] | undefined,
  next: Omit<Condition, "lastTransitionTime">,
  now: Date,
): Condition[] {
  const out = [...(list ?? [])];
  const i = out.findIndex((c) => c.type === next.type);
  const old = i >= 0 ? out[i] : undefined;
  const condition: Condition = {
    ...next,
    lastTransitionTime:
      old && old.status === next.status ? old.lastTransitionTime : now.toISOString().replace(/\.\d+Z$/, "Z"),
  };
  if (i >= 0) out[i] = condition;
  else out.push(condition);
  return out;
}

/** Sets several conditions at once. */
export function setConditions(
  list: Condition[] | undefined,
  next: Omit<Condition, "lastTransitionTime">[],
  now: Date,
): Condition[] {
  let out = list ?? [];
  for (const c of next) out = setCondition(out, c, now);
  return out;
}

export function findCondition(list: Condition[] | undefined, type: Condition["type"]): Condition | undefined {
  return list?.find((c) => c.type === type);
}

/** Kubernetes timestamps: RFC 3339, whole seconds, UTC. */
export function timestamp(date: Date): string {
  return date.toISOString().replace(/\.\d+Z$/, "Z");
}
