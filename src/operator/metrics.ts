import { Counter, Gauge, Histogram, Registry } from "prom-client";

/**
 * The operator's Prometheus metrics, named like the daemon's (`etcd_backup_*`). Labels are the EtcdBackup's
 * namespace and cluster name: bounded by the objects users create, never per backup.
 */
export class OperatorMetrics {
  readonly registry: Registry;
  readonly backups: Counter<"namespace" | "cluster" | "result">;
  readonly duration: Histogram<"namespace" | "cluster">;
  readonly lastSuccess: Gauge<"namespace" | "cluster">;
  readonly lastSize: Gauge<"namespace" | "cluster">;
  readonly inFlight: Gauge;
  readonly pruned: Counter<"namespace" | "schedule">;
  readonly leader: Gauge;
  readonly relists: Counter<"resource">;

  constructor(registry = new Registry()) {
    this.registry = registry;
    const registers = [registry];
    this.backups = new Counter({
      name: "etcd_backup_runs_total",
      help: "Backup attempts by result (success, failure, aborted)",
      labelNames: ["namespace", "cluster", "result"],
      registers,
    });
    this.duration = new Histogram({
      name: "etcd_backup_duration_seconds",
      help: "Duration of successful backups",
      labelNames: ["namespace", "cluster"],
      buckets: [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600],
      registers,
    });
    this.lastSuccess = new Gauge({
      name: "etcd_backup_last_success_timestamp_seconds",
      help: "Unix time of the last successful backup",
      labelNames: ["namespace", "cluster"],
      registers,
    });
    this.lastSize = new Gauge({
      name: "etcd_backup_last_size_bytes",
      help: "Bytes stored by the last successful backup",
      labelNames: ["namespace", "cluster"],
      registers,
    });
    this.inFlight = new Gauge({ name: "etcd_backup_in_flight", help: "Backups running now", registers });
    this.pruned = new Counter({
      name: "etcd_backup_pruned_total",
      help: "Backups deleted by retention",
      labelNames: ["namespace", "schedule"],
      registers,
    });
    this.leader = new Gauge({
      name: "etcd_backup_operator_leader",
      help: "1 while this replica holds the leader Lease (or runs without leader election)",
      registers,
    });
    this.relists = new Counter({
      name: "etcd_backup_operator_relists_total",
      help: "Full lists of a resource (startup and after 410 Gone)",
      labelNames: ["resource"],
      registers,
    });
  }
}
