import type { Command } from "commander";
import { durationSetting } from "../../duration.ts";

/**
 * `hold --for DURATION` (hidden): does nothing for that long, then exits 0; SIGTERM or SIGINT end it at once.
 * It is the main process of the kubeconfig save's helper pod (src/source/kubernetes/helper-pod.ts), whose image has
 * no shell or `sleep`: the snapshot is taken by the `save` exec'd beside it, and the pod is deleted afterwards.
 */
export function register(program: Command): void {
  program
    .command("hold", { hidden: true })
    .description("wait (the kubeconfig save's helper pod runs this while save is exec'd in it)")
    .option("--for <duration>", "how long to wait (1h, 30m; a bare number is seconds)", "1h")
    .action(async (flags: { for: string }) => {
      const ms = durationSetting("--for", flags.for);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, ms);
        function done() {
          clearTimeout(timer);
          process.off("SIGTERM", done);
          process.off("SIGINT", done);
          resolve();
        }
        process.once("SIGTERM", done);
        process.once("SIGINT", done);
      });
    });
}
