/**
 * Tries one candidate after another (etcd endpoints, Talos endpoints, Talos nodes) until one works: the first
 * result is returned. A failure that `isFatal` calls final, or any failure once `signal` is aborted, is thrown
 * at once; the others are collected, one line each (`describe`), and handed to `allFailed` for the error thrown
 * when no candidate worked.
 */
export async function tryInTurn<C, T>(
  candidates: readonly C[],
  attempt: (candidate: C) => Promise<T>,
  options: {
    signal?: AbortSignal | undefined;
    isFatal?: (err: unknown) => boolean;
    describe: (candidate: C, err: unknown) => string;
    allFailed: (failures: string[]) => Error;
  },
): Promise<T> {
  const failures: string[] = [];
  for (const candidate of candidates) {
    options.signal?.throwIfAborted();
    try {
      return await attempt(candidate);
    } catch (err) {
      if (options.signal?.aborted || options.isFatal?.(err)) throw err;
      failures.push(options.describe(candidate, err));
    }
  }
  throw options.allFailed(failures);
}
