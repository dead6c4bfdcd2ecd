import { formatDuration } from "../duration.ts";
import { formatBytes } from "../render/units.ts";
import type { NotifyEventKind, NotifyFormat } from "./target.ts";

/**
 * What a notification says. Holds no secret: `error` is one redacted line, and nothing here names a key, a
 * password or a receiver. The JSON format posts this object as it is.
 */
export interface NotifyEvent {
  event: NotifyEventKind;
  cluster: string;
  /** When it happened (RFC 3339). */
  time: string;
  /** Who sends it: `save`, `daemon` or `operator`. */
  origin: "save" | "daemon" | "operator";
  /** The backup's name in the store (success), when there is one. */
  backup?: string;
  /** Where backups go (`s3://bucket/prefix`, a directory), never with credentials. */
  store?: string;
  /** failure: what failed and why, one redacted line. */
  error?: string;
  /** How long the run took. */
  durationSeconds?: number;
  /** success: bytes stored (compressed, encrypted). */
  sizeBytes?: number;
  /** success: etcd's revision in the snapshot. */
  revision?: number;
  /** failure: failed attempts in a row. */
  attempts?: number;
  /** stale: the last success (absent: none since start), and how long without one makes it stale. */
  lastSuccess?: string;
  staleAfterSeconds?: number;
  /** operator: the EtcdBackupSchedule and its namespace. */
  namespace?: string;
  schedule?: string;
}

/** The request body for a receiver of `format`. */
export function notificationBody(event: NotifyEvent, format: NotifyFormat): string {
  return JSON.stringify(format === "slack" ? slackPayload(event) : event);
}

/**
 * Slack's incoming-webhook payload: one `text` in Slack's mrkdwn (`&`, `<`, `>` escaped as Slack requires).
 * Mattermost and Rocket.Chat accept the same.
 */
export function slackPayload(event: NotifyEvent): { text: string } {
  const where = event.namespace && event.schedule ? ` (${event.namespace}/${event.schedule})` : "";
  const cluster = `\`${escapeSlack(event.cluster)}\`${escapeSlack(where)}`;
  const took =
    event.durationSeconds !== undefined ? ` in ${formatDuration(event.durationSeconds * 1000)}` : "";
  let text: string;
  switch (event.event) {
    case "success": {
      const size = event.sizeBytes !== undefined ? ` (${formatBytes(event.sizeBytes)})` : "";
      const name = event.backup ? ` \`${escapeSlack(event.backup)}\`` : "";
      text = `:white_check_mark: etcd-backup: backup of cluster ${cluster} stored${name}${size}${took}`;
      break;
    }
    case "failure": {
      const attempts = event.attempts && event.attempts > 1 ? ` (${event.attempts} attempts)` : "";
      text = `:x: etcd-backup: backup of cluster ${cluster} failed${took}${attempts}: ${escapeSlack(event.error ?? "unknown error")}`;
      break;
    }
    case "stale": {
      const since = event.lastSuccess ? `since ${event.lastSuccess}` : "since the start";
      const limit =
        event.staleAfterSeconds !== undefined
          ? ` (expected at least every ${formatDuration(event.staleAfterSeconds * 1000)})`
          : "";
      text = `:warning: etcd-backup: no successful backup of cluster ${cluster} ${since}${limit}`;
      break;
    }
  }
  if (event.store) text += `\nstore: ${escapeSlack(event.store)}`;
  return { text };
}

function escapeSlack(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}
