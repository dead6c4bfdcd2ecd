import { type Command, Option } from "commander";

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/**
 * `--notify URL` (repeatable), `--notify-on`, `--notify-format`; with `stale` (the daemon), `--notify-stale-after`.
 * The values become settings (command-settings.ts) and go to src/notify/ through the one job configuration.
 */
export function addNotifyOptions(cmd: Command, options: { stale: boolean }): Command {
  cmd
    .addOption(
      new Option(
        "--notify <url>",
        "post an event to this webhook (repeatable; slack+https://... for Slack's format); the URL is a secret, never printed",
      )
        .argParser(collect)
        .env("ETCD_BACKUP_NOTIFY"),
    )
    .addOption(
      new Option(
        "--notify-on <events>",
        options.stale
          ? "comma-separated: success, failure, stale (default failure)"
          : "comma-separated: success, failure (default failure)",
      ).env("ETCD_BACKUP_NOTIFY_ON"),
    )
    .addOption(
      new Option("--notify-format <format>", "payload of URLs without a slack+/json+ prefix (default json)")
        .choices(["json", "slack"])
        .env("ETCD_BACKUP_NOTIFY_FORMAT"),
    );
  if (options.stale) {
    cmd.addOption(
      new Option(
        "--notify-stale-after <duration>",
        "with --notify-on stale: no success for this long is stale (default twice the schedule's interval)",
      ).env("ETCD_BACKUP_NOTIFY_STALE_AFTER"),
    );
  }
  return cmd;
}
