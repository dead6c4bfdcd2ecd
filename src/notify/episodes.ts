/*
 * When a long-running front end (the daemon) notifies, so that a receiver hears about a problem once, not at
 * every tick:
 * - success: every successful run (a heartbeat a dead man's switch can watch);
 * - failure: the first failed attempt of a failure episode; the episode ends with the next success, so a
 *   backup that keeps failing is reported once, and again only after it worked in between;
 * - stale: once when no run succeeded for `staleAfterMs` (counted from the last success, or from the start);
 *   the episode ends with the next success.
 * Pure: the caller gives the times.
 */
export class NotifyEpisodes {
  private failing = false;
  /** The start of the stale episode already reported (the last success's time, or the start's). */
  private staleReportedFor: number | undefined;

  /** A run succeeded: ends both episodes. */
  succeeded(): void {
    this.failing = false;
    this.staleReportedFor = undefined;
  }

  /** An attempt failed: true when it starts a failure episode (notify), false within one. */
  failed(): boolean {
    if (this.failing) return false;
    this.failing = true;
    return true;
  }

  /**
   * True once per episode, when `since` (the last success, or the start) is more than `staleAfterMs` before
   * `now`.
   */
  stale(now: number, since: number, staleAfterMs: number): boolean {
    if (now - since <= staleAfterMs) return false;
    if (this.staleReportedFor === since) return false;
    this.staleReportedFor = since;
    return true;
  }
}
