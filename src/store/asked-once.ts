/**
 * A question about a bucket or container (does it lock? what is its retention policy?) asked once per store and
 * its answer shared by every caller, including callers that come while it is being asked. A question that fails
 * is not remembered: the next caller asks again, so one network blip does not stick for the store's life.
 */
export class AskedOnce<T> {
  private readonly ask: () => Promise<T>;
  private answer: Promise<T> | undefined;

  constructor(ask: () => Promise<T>) {
    this.ask = ask;
  }

  get(): Promise<T> {
    if (this.answer) return this.answer;
    const answer = this.ask();
    this.answer = answer;
    answer.catch(() => {
      if (this.answer === answer) this.answer = undefined;
    });
    return answer;
  }
}
