import { formatBytes } from "../render/units.ts";

/**
 * A progress bar on stderr, drawn only when stderr is a terminal (never into logs or pipes), redrawn at most
 * ten times a second.
 */
export class ProgressBar {
  private readonly enabled: boolean;
  private readonly label: string;
  private readonly started = Date.now();
  private last = 0;

  constructor(label: string, stream: NodeJS.WriteStream = process.stderr) {
    this.enabled = Boolean(stream.isTTY) && !process.env.CI;
    this.label = label;
  }

  update(bytes: number, total?: number): void {
    if (!this.enabled) return;
    const now = Date.now();
    if (now - this.last < 100) return;
    this.last = now;
    const secs = Math.max(0.001, (now - this.started) / 1000);
    const rate = `${formatBytes(bytes / secs)}/s`;
    let bar = "";
    if (total && total > 0) {
      const frac = Math.min(1, bytes / total);
      const width = 30;
      const filled = Math.round(frac * width);
      bar = `[${"#".repeat(filled)}${"-".repeat(width - filled)}] ${(frac * 100).toFixed(0).padStart(3)}% `;
    }
    process.stderr.write(
      `\r${this.label} ${bar}${formatBytes(bytes)}${total ? ` / ${formatBytes(total)}` : ""} ${rate}\x1b[K`,
    );
  }

  done(): void {
    if (this.enabled && this.last > 0) process.stderr.write("\r\x1b[K");
  }
}
