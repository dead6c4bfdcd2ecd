import type { HttpHandlers } from "../../daemon/http.ts";
import type { Redactor } from "../../observability/redact.ts";
import type { OperatorMetrics } from "../metrics.ts";
import type { OperatorStatusBoard } from "./board.ts";
import { renderOperatorStatusPage } from "./page.ts";

/**
 * What the operator serves on `--metrics-addr`, through the daemon's HTTP server (same paths, same headers):
 * `/metrics` (redacted), `/healthz`, `/readyz` (200 on every replica: a standby takes over when the leader goes;
 * the body says `leader` or `standby`), `/` the status page and `/status.json` its facts. The page and the JSON
 * are built from the board (informer caches and the cluster gate) per request: no API call.
 */
export function operatorHttpHandlers(o: {
  metrics: OperatorMetrics;
  leading: () => boolean;
  redactor: Pick<Redactor, "redact">;
  board: OperatorStatusBoard;
}): HttpHandlers {
  return {
    async metrics() {
      return {
        contentType: o.metrics.registry.contentType,
        body: o.redactor.redact(await o.metrics.registry.metrics()),
      };
    },
    notReady: () => null,
    readyBody: () => (o.leading() ? "leader" : "standby"),
    statusPage: () => renderOperatorStatusPage(o.board.status()),
    statusJson: () => `${JSON.stringify(o.board.status(), null, 2)}\n`,
  };
}
