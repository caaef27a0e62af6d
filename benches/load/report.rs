//! The results: one table of absolute figures and ratios to the ceiling, the performance targets
//! (the "target" and "holds" columns of README "Performance") with what was measured and whether
//! each holds, and the same as JSON.

use std::time::Duration;

use serde_json::{json, Value};

use crate::seed::Seed;
use crate::server::ReadyPath;
use crate::Args;

const MIB: f64 = 1024.0 * 1024.0;

/// One measured phase.
#[derive(Debug, Clone)]
pub struct PhaseResult {
    pub key: String,
    pub label: String,
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub requests: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    /// CPU time per request (warm-up included), microseconds: server and load generator.
    pub server_cpu_us: f64,
    pub client_cpu_us: f64,
    /// Whether the server was idle when the phase began (else the previous phase's leftovers
    /// ran alongside it).
    pub settled: bool,
}

impl PhaseResult {
    /// CPU of both processes per request: what a request costs the (shared) machine.
    fn cpu_us(&self) -> f64 {
        self.server_cpu_us + self.client_cpu_us
    }
}

pub struct Report {
    config: Value,
    seed: Value,
    users: usize,
    db_bytes_per_user: f64,
    ready: ReadyPath,
    start_to_ready: Duration,
    phases: Vec<PhaseResult>,
    /// (VmHWM after P1, highest VmRSS sampled during P1), bytes.
    pub rss_p1: Option<(u64, u64)>,
    /// (VmHWM, VmRSS) at the end of the run, bytes.
    pub rss_end: Option<(u64, u64)>,
    /// `feed_catchup`: (changes/s, changes read, whether the whole log was read).
    pub feed_catchup: Option<(f64, u64, bool)>,
    /// `feed_longpoll`: (p50 ms, p99 ms, writes measured), write's 200 → consumer's answer.
    pub feed_longpoll: Option<(f64, f64, usize)>,
    /// `feed_snapshot`: (users/s, users read).
    pub feed_snapshot: Option<(f64, u64)>,
    /// Peak RSS during `feed_snapshot`, bytes, whether it is the phase's own peak (VmHWM
    /// reset before it) rather than the highest VmRSS sampled every 100 ms, and the RSS when
    /// the phase began (what earlier phases left: the allocator keeps what it was given).
    pub rss_snapshot: Option<(u64, bool, u64)>,
    notes: Vec<String>,
}

/// A performance target (README "Performance"): what was measured, the bound, whether it holds.
struct Target {
    name: &'static str,
    measured: String,
    bound: &'static str,
    holds: Option<bool>,
    value: f64,
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

/// 1234567 → "1,234,567".
fn thousands(n: f64) -> String {
    let s = format!("{:.0}", n);
    let (sign, digits) = s.split_at(usize::from(s.starts_with('-')));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    format!("{sign}{out}")
}

impl Report {
    pub fn new(args: &Args, seed: &Seed, ready: ReadyPath, start_to_ready: Duration) -> Report {
        let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
        Report {
            config: json!({
                "users": args.users,
                "connections": args.connections,
                "duration_s": args.duration.as_secs_f64(),
                "warmup_s": args.warmup.as_secs_f64(),
                "cores": cores,
                "load_average_1m_at_start": load_average(),
                "server_bin": args.server_bin.display().to_string(),
                "generator": "built-in (benches/load/client.rs): tokio + hyper 1 HTTP/1.1 + rustls, closed loop, keep-alive",
            }),
            seed: serde_json::to_value(seed).unwrap_or(Value::Null),
            users: seed.users,
            db_bytes_per_user: seed.db_bytes as f64 / seed.users as f64,
            ready,
            start_to_ready,
            phases: Vec::new(),
            rss_p1: None,
            rss_end: None,
            feed_catchup: None,
            feed_longpoll: None,
            feed_snapshot: None,
            rss_snapshot: None,
            notes: Vec::new(),
        }
    }

    pub fn phase(&mut self, p: PhaseResult) {
        eprintln!(
            "  {:<48} {:>9} req/s  p50 {:>7.2} ms  p99 {:>7.2} ms  server {:>5.0} µs/req  errors {}",
            p.label,
            thousands(p.rps),
            p.p50_ms,
            p.p99_ms,
            p.server_cpu_us,
            p.errors
        );
        if let Some(e) = &p.first_error {
            eprintln!("    first error: {e}");
        }
        if !p.settled {
            self.note(format!(
                "{}: the server was still busy after 60 s when the phase began; its figures include that work",
                p.label
            ));
        }
        self.phases.push(p);
    }

    pub fn note(&mut self, n: String) {
        self.notes.push(n);
    }

    /// The denominator: the mean of the ceiling runs (before and after the SCIM phases).
    fn ceiling(&self) -> Option<f64> {
        let runs: Vec<f64> = self
            .phases
            .iter()
            .filter(|p| p.key == "ceiling")
            .map(|p| p.rps)
            .collect();
        (!runs.is_empty()).then(|| runs.iter().sum::<f64>() / runs.len() as f64)
    }

    /// CPU per request of the ceiling (server + generator), mean of the ceiling runs.
    fn ceiling_cpu_us(&self) -> Option<f64> {
        let runs: Vec<f64> = self
            .phases
            .iter()
            .filter(|p| p.key == "ceiling")
            .map(PhaseResult::cpu_us)
            .collect();
        (!runs.is_empty()).then(|| runs.iter().sum::<f64>() / runs.len() as f64)
    }

    fn get(&self, key: &str) -> Option<&PhaseResult> {
        self.phases.iter().find(|p| p.key == key)
    }

    fn ratio(&self, key: &str) -> Option<f64> {
        Some(self.get(key)?.rps / self.ceiling()?)
    }

    fn cpu_ratio(&self, key: &str) -> Option<f64> {
        Some(self.ceiling_cpu_us()? / self.get(key)?.cpu_us())
    }

    fn targets(&self) -> Vec<Target> {
        let mut t = Vec::new();
        if let (Some(p1), Some(r)) = (self.get("p1"), self.ratio("p1")) {
            t.push(Target {
                name: "P1 filtered GET",
                measured: format!(
                    "{r:.2}× ceiling (CPU {:.2}×), p99 {:.2} ms",
                    self.cpu_ratio("p1").unwrap_or(f64::NAN),
                    p1.p99_ms
                ),
                bound: "≥ 0.5× ceiling, p99 ≤ 5 ms",
                holds: Some(r >= 0.5 && p1.p99_ms <= 5.0),
                value: r,
            });
        }
        if let (Some(p1), Some(flooded)) = (self.get("p1"), self.get("oauth_flood")) {
            let r = flooded.rps / p1.rps;
            t.push(Target {
                name: "P1 under 200 wrong secrets/s",
                measured: format!("{r:.2}× P1 (p99 {:.2} ms)", flooded.p99_ms),
                bound: "≥ 0.8× P1",
                holds: Some(r >= 0.8),
                value: r,
            });
        }
        if let Some(r) = self.ratio("p2") {
            t.push(Target {
                name: "P2 durable create",
                measured: format!(
                    "{r:.2}× ceiling (CPU {:.2}×)",
                    self.cpu_ratio("p2").unwrap_or(f64::NAN)
                ),
                bound: "≥ 0.2× ceiling",
                holds: Some(r >= 0.2),
                value: r,
            });
        }
        if let (Some(big), Some(small)) = (self.get("p3_big"), self.get("p3_small")) {
            let r = big.p50_ms / small.p50_ms;
            t.push(Target {
                name: "P3 member add, big vs 10",
                measured: format!("p50 {:.2} / {:.2} ms = {r:.2}", big.p50_ms, small.p50_ms),
                bound: "p50 ratio ≤ 1.2",
                holds: Some(r <= 1.2),
                value: r,
            });
        }
        if let Some((hwm, _)) = self.rss_p1 {
            let mib = hwm as f64 / MIB;
            t.push(Target {
                name: "RSS during P1",
                measured: format!(
                    "{mib:.1} MiB peak at {} users",
                    thousands(self.users as f64)
                ),
                bound: "≤ 64 MiB at 1M users",
                holds: (self.users >= 1_000_000).then_some(mib <= 64.0),
                value: mib,
            });
        }
        self.feed_targets(&mut t);
        let kib = self.db_bytes_per_user / 1024.0;
        t.push(Target {
            name: "DB size",
            measured: format!("{kib:.2} KiB/user"),
            bound: "≤ 1.5 KiB/user",
            holds: Some(kib <= 1.5),
            value: kib,
        });
        let ms = self.start_to_ready.as_secs_f64() * 1000.0;
        t.push(Target {
            name: "start → ready",
            measured: format!(
                "{ms:.1} ms to {} at {} users",
                self.ready.path(),
                thousands(self.users as f64)
            ),
            bound: "≤ 100 ms at 1M users",
            holds: (self.users >= 1_000_000).then_some(ms <= 100.0),
            value: ms,
        });
        t
    }

    /// The change feed's targets (README "Performance"), at whatever size this run has; the RSS bound is
    /// judged at 1M users only, like P1's.
    fn feed_targets(&self, t: &mut Vec<Target>) {
        if let Some((rate, changes, complete)) = self.feed_catchup {
            t.push(Target {
                name: "Feed catch-up",
                measured: format!(
                    "{} changes/s ({} changes{})",
                    thousands(rate),
                    thousands(changes as f64),
                    if complete {
                        ", whole log"
                    } else {
                        ", time cap"
                    }
                ),
                bound: "≥ 20,000 changes/s",
                holds: Some(rate >= 20_000.0),
                value: rate,
            });
        }
        if let Some((p50, p99, n)) = self.feed_longpoll {
            t.push(Target {
                name: "Feed long-poll latency",
                measured: format!("p50 {p50:.2} ms, p99 {p99:.2} ms ({n} writes)"),
                bound: "p99 ≤ 50 ms",
                holds: Some(p99 <= 50.0),
                value: p99,
            });
        }
        if let Some((rate, users)) = self.feed_snapshot {
            t.push(Target {
                name: "Feed snapshot",
                measured: format!(
                    "{} users/s ({} users)",
                    thousands(rate),
                    thousands(users as f64)
                ),
                bound: "≥ 20,000 users/s",
                holds: Some(rate >= 20_000.0),
                value: rate,
            });
        }
        if let Some((peak, own, start)) = self.rss_snapshot {
            let mib = peak as f64 / MIB;
            t.push(Target {
                name: "RSS during snapshot",
                measured: format!(
                    "{mib:.1} MiB {} (from {:.1}) at {} users",
                    if own { "peak" } else { "sampled" },
                    start as f64 / MIB,
                    thousands(self.users as f64)
                ),
                bound: "≤ 64 MiB at 1M users",
                holds: (self.users >= 1_000_000).then_some(mib <= 64.0),
                value: mib,
            });
        }
    }

    pub fn print(&self) {
        let cfg = &self.config;
        println!();
        println!(
            "grouptalk-scim load bench: {} users, {} connections, {} s per phase (+{} s warm-up), {} cores, load average {} at start",
            thousands(self.users as f64),
            cfg["connections"],
            cfg["duration_s"],
            cfg["warmup_s"],
            cfg["cores"],
            cfg["load_average_1m_at_start"].as_str().unwrap_or("?"),
        );
        println!(
            "seed: {} users + 2 groups in {:.1} s ({} users/s); database {:.1} MiB = {:.0} bytes/user",
            thousands(self.users as f64),
            self.seed["seconds"].as_f64().unwrap_or(f64::NAN),
            thousands(self.seed["users_per_second"].as_f64().unwrap_or(f64::NAN)),
            self.seed["db_bytes"].as_f64().unwrap_or(f64::NAN) / MIB,
            self.db_bytes_per_user,
        );
        println!();
        println!(
            "| {:<48} | {:>9} | {:>9} | {:>8} | {:>8} | {:>10} | {:>10} | {:>6} |",
            "phase", "req/s", "× ceiling", "p50 ms", "p99 ms", "server µs", "× ceil CPU", "errors"
        );
        println!(
            "|{:-<50}|{:->11}|{:->11}|{:->10}|{:->10}|{:->12}|{:->12}|{:->8}|",
            "", "", "", "", "", "", "", ""
        );
        let ceiling = self.ceiling();
        let ceiling_cpu = self.ceiling_cpu_us();
        for p in &self.phases {
            let ratio = ceiling.map_or("-".to_string(), |c| format!("{:.2}", p.rps / c));
            let cpu_ratio =
                ceiling_cpu.map_or("-".to_string(), |c| format!("{:.2}", c / p.cpu_us()));
            println!(
                "| {:<48} | {:>9} | {:>9} | {:>8.2} | {:>8.2} | {:>10.0} | {:>10} | {:>6} |",
                p.label,
                thousands(p.rps),
                ratio,
                p.p50_ms,
                p.p99_ms,
                p.server_cpu_us,
                cpu_ratio,
                p.errors
            );
        }
        println!(
            "server µs: server CPU time per request. × ceil CPU: CPU per request of the ceiling \
             (server + load generator) over the phase's — the throughput ratio the phase would \
             reach on an otherwise idle machine."
        );
        if let Some((hwm, sampled)) = self.rss_p1 {
            println!();
            println!(
                "server memory: peak RSS (VmHWM) through P1 {:.1} MiB, highest VmRSS sampled during P1 {:.1} MiB",
                hwm as f64 / MIB,
                sampled as f64 / MIB
            );
        }
        if let Some((hwm, rss)) = self.rss_end {
            println!(
                "server memory at the end: VmHWM {:.1} MiB, VmRSS {:.1} MiB",
                hwm as f64 / MIB,
                rss as f64 / MIB
            );
        }
        println!();
        println!(
            "| {:<26} | {:<44} | {:<28} | {:<5} |",
            "target", "measured", "target", "holds"
        );
        println!("|{:-<28}|{:-<46}|{:-<30}|{:-<7}|", "", "", "", "");
        for t in self.targets() {
            let holds = match t.holds {
                Some(true) => "yes",
                Some(false) => "NO",
                None => "n/a",
            };
            println!(
                "| {:<26} | {:<44} | {:<28} | {:<5} |",
                t.name, t.measured, t.bound, holds
            );
        }
        for n in &self.notes {
            println!("note: {n}");
        }
        let errors: u64 = self.phases.iter().map(|p| p.errors).sum();
        if errors > 0 {
            println!("WARNING: {errors} requests failed; see the first errors above");
        }
    }

    pub fn to_json(&self) -> Value {
        let ceiling = self.ceiling();
        let phases: Vec<Value> = self
            .phases
            .iter()
            .map(|p| {
                json!({
                    "key": p.key,
                    "label": p.label,
                    "requests_per_second": p.rps,
                    "ratio_to_ceiling": ceiling.map(|c| p.rps / c),
                    "server_cpu_us_per_request": p.server_cpu_us,
                    "generator_cpu_us_per_request": p.client_cpu_us,
                    "cpu_ratio_to_ceiling": self.ceiling_cpu_us().map(|c| c / p.cpu_us()),
                    "p50_ms": p.p50_ms,
                    "p99_ms": p.p99_ms,
                    "requests": p.requests,
                    "errors": p.errors,
                    "first_error": p.first_error,
                    "server_idle_at_start": p.settled,
                })
            })
            .collect();
        let targets: Vec<Value> = self
            .targets()
            .iter()
            .map(|t| json!({"target": t.name, "measured": t.measured, "value": t.value, "bound": t.bound, "holds": t.holds}))
            .collect();
        json!({
            "config": self.config,
            "seed": self.seed,
            "db_bytes_per_user": self.db_bytes_per_user,
            "ready_endpoint": self.ready.path(),
            "start_to_ready_ms": self.start_to_ready.as_secs_f64() * 1000.0,
            "ceiling_requests_per_second": ceiling,
            "ceiling_cpu_us_per_request": self.ceiling_cpu_us(),
            "phases": phases,
            "rss_bytes": {
                "p1_vmhwm": self.rss_p1.map(|r| r.0),
                "p1_vmrss_sampled_max": self.rss_p1.map(|r| r.1),
                "end_vmhwm": self.rss_end.map(|r| r.0),
                "end_vmrss": self.rss_end.map(|r| r.1),
                "feed_snapshot_peak": self.rss_snapshot.map(|r| r.0),
            },
            "targets": targets,
            "notes": self.notes,
        })
    }
}
