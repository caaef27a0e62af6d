//! `cargo bench --bench load` (what `scripts/bench` runs): seed a tenant with N users through
//! the store, start the release binary with TLS, and measure each SCIM phase with the built-in
//! keep-alive HTTPS load generator against the ceiling — the same binary, TLS and generator on
//! `GET /livez`, which does no SCIM or database work. Prints one table (absolute figures and
//! ratios to the ceiling, targets met or missed) and writes it as JSON.
//!
//! Run without `--bench` (as `cargo test --all-targets` does) it only says how to run it.

mod client;
mod feed;
mod report;
mod seed;
mod server;
mod walks;

use std::fs;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use hyper::Method;
use serde_json::{json, Value};

use client::{MakeRequest, Outcome, Req, Target};
use report::{PhaseResult, Report};
use server::{Instance, ReadyPath};

const USAGE: &str = "\
usage: scripts/bench [--users N] [--quick] [--duration SECS] [--warmup SECS]
                     [--connections C] [--phases LIST] [--reuse-seed] [--server-bin PATH]
                     [--out FILE] [--work DIR]

  --users N          users to seed (default 1000000; --quick: 20000)
  --quick            smoke run: 20,000 users, 3 s phases, 1 s warm-up
  --duration SECS    measured seconds per phase (default 10)
  --warmup SECS      unmeasured seconds before each phase (default 2)
  --connections C    concurrent keep-alive connections (default 64)
  --phases LIST      comma-separated subset of: ceiling,p1,attack,oauth_flood,get_user,get_group,
                     dashboard,walk,walk_cursor,feed_catchup,feed_snapshot,feed_longpoll,p3,p2
  --reuse-seed       reuse target/bench/seed-N when it matches (default: seed afresh)
  --server-bin PATH  measure another build of grouptalk-scim (default: this release build)
  --out FILE         JSON results (default target/bench/results.json)
  --work DIR         seeds, the run's data dir and logs (default target/bench)";

const BASE: &str = "/api/scim";
const ALL_PHASES: [&str; 14] = [
    "ceiling",
    "p1",
    "attack",
    "oauth_flood",
    "get_user",
    "get_group",
    "dashboard",
    "walk",
    "walk_cursor",
    "feed_catchup",
    "feed_snapshot",
    "feed_longpoll",
    "p3",
    "p2",
];
/// The attack phase: connections from another loopback address sending bad tokens as fast as
/// they can, while P1 is measured from the usual address.
const ATTACKER: [u8; 4] = [127, 0, 0, 3];
const ATTACK_CONNECTIONS: usize = 32;
/// The OAuth phase: wrong-secret token requests for the tenant's real client id, paced at this
/// rate from another loopback address, while P1 is measured (issue target: P1 ≥ 0.8 of P1).
const OAUTH_FLOOD_PER_SECOND: u64 = 200;
const OAUTH_FLOODER: [u8; 4] = [127, 0, 0, 4];

struct Args {
    users: usize,
    duration: Duration,
    warmup: Duration,
    connections: usize,
    phases: Vec<String>,
    reuse_seed: bool,
    server_bin: PathBuf,
    out: PathBuf,
    work: PathBuf,
}

fn parse_args() -> Result<Option<Args>> {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if !argv.iter().any(|a| a == "--bench") {
        // `cargo test --all-targets` runs bench binaries without `--bench`: nothing to test.
        println!("load bench: run it with scripts/bench (or cargo bench --bench load)");
        return Ok(None);
    }
    let work = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench");
    let quick = argv.iter().any(|a| a == "--quick");
    let mut a = Args {
        users: if quick { 20_000 } else { 1_000_000 },
        duration: Duration::from_secs(if quick { 3 } else { 10 }),
        warmup: Duration::from_secs(if quick { 1 } else { 2 }),
        connections: 64,
        phases: ALL_PHASES.iter().map(|s| s.to_string()).collect(),
        reuse_seed: false,
        server_bin: PathBuf::from(env!("CARGO_BIN_EXE_grouptalk-scim")),
        out: work.join("results.json"),
        work,
    };
    let mut it = argv.into_iter();
    while let Some(arg) = it.next() {
        let mut value = || it.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--bench" | "--quick" => {}
            "--users" => a.users = value()?.replace(['_', ','], "").parse()?,
            "--duration" => a.duration = Duration::from_secs_f64(value()?.parse()?),
            "--warmup" => a.warmup = Duration::from_secs_f64(value()?.parse()?),
            "--connections" => a.connections = value()?.parse()?,
            "--phases" => a.phases = value()?.split(',').map(str::to_string).collect(),
            "--reuse-seed" => a.reuse_seed = true,
            "--server-bin" => a.server_bin = PathBuf::from(value()?),
            "--out" => a.out = PathBuf::from(value()?),
            "--work" => {
                a.work = PathBuf::from(value()?);
                a.out = a.work.join("results.json");
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(None);
            }
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    if a.users < 20 {
        bail!("--users must be at least 20");
    }
    if let Some(p) = a.phases.iter().find(|p| !ALL_PHASES.contains(&p.as_str())) {
        bail!("unknown phase {p:?}; phases: {}", ALL_PHASES.join(","));
    }
    Ok(Some(a))
}

fn main() -> Result<()> {
    let Some(args) = parse_args()? else {
        return Ok(());
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(args))
}

/// A well-mixed index in `0..n` for sequence number `seq` (splitmix64), so concurrent
/// connections spread over the whole directory without sharing an RNG.
fn spread(seq: u64, n: usize) -> usize {
    let mut z = seq.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    ((z ^ (z >> 31)) % n as u64) as usize
}

fn filter_query(expr: &str) -> String {
    form_urlencoded::byte_serialize(expr.as_bytes()).collect()
}

async fn run(args: Args) -> Result<()> {
    fs::create_dir_all(&args.work)?;
    let seed_dir = seed::seed_dir(&args.work, args.users);
    let reused = match args.reuse_seed {
        true => seed::load(&seed_dir, args.users)?,
        false => None,
    };
    let seed = match reused {
        Some(s) => {
            eprintln!("reusing the seed in {}", seed_dir.display());
            s
        }
        None => {
            eprintln!("seeding {} users into {} …", args.users, seed_dir.display());
            seed::create(&seed_dir, args.users)?
        }
    };
    eprintln!(
        "seed: {} users in {:.1} s ({:.0} users/s), {:.0} bytes/user",
        seed.users,
        seed.seconds,
        seed.users_per_second,
        seed.db_bytes as f64 / seed.users as f64
    );
    let seed = Arc::new(seed);

    // A fresh copy for this run: the write phases must not change the cached seed.
    let run_dir = args.work.join("run");
    let _ = fs::remove_dir_all(&run_dir);
    let inst = Instance::prepare(&run_dir, &args.server_bin)?;
    fs::copy(seed_dir.join("grouptalk-scim.db"), inst.database())
        .context("copy the seeded database")?;
    let token = inst.issue_token(seed::TENANT)?;

    // Start → ready, three times (page cache warm: the database was just written); keep the last.
    let mut ready = ReadyPath::Readyz;
    let mut starts = Vec::new();
    let mut server = None;
    for _ in 0..3 {
        if let Some(s) = server.take() {
            server::Running::stop(s)?;
        }
        let (s, t) = inst.start(&mut ready).await?;
        starts.push(t);
        server = Some(s);
    }
    let server = server.context("server did not start")?;
    starts.sort();
    let start_to_ready = starts[1];
    eprintln!(
        "server pid {} on {}; start → {} 200: {:.1} ms (median of 3)",
        server.pid(),
        inst.addr,
        ready.path(),
        start_to_ready.as_secs_f64() * 1000.0
    );

    let anon = inst.target()?;
    let scim = anon.with_token(&token);
    let (status, _) = anon.once(&Req::get("/livez")).await?;
    if status != 200 {
        bail!("GET /livez answered {status}: the ceiling endpoint is missing from this build");
    }
    check_filter(&scim, &seed).await?;

    let mut report = Report::new(&args, &seed, ready, start_to_ready);
    let phases = phase_table(&seed);
    let wants = |p: &str| args.phases.iter().any(|x| x == p);
    let server_ref = &server;
    let measure_for = |target: &Target, make: MakeRequest, expect: u16, d: Duration| {
        let target = target.clone();
        let (c, w) = (args.connections, args.warmup);
        async move {
            let cpu = || -> Result<(f64, f64)> {
                Ok((
                    server_ref.cpu_seconds()?,
                    server::cpu_seconds("/proc/self/stat")?,
                ))
            };
            let settled = server_ref.settle(Duration::from_secs(60)).await?;
            let before = cpu()?;
            let mut o = client::run(&target, c, w, d, expect, make).await?;
            o.settled = settled;
            let after = cpu()?;
            o.server_cpu_s = after.0 - before.0;
            o.client_cpu_s = after.1 - before.1;
            Ok::<Outcome, anyhow::Error>(o)
        }
    };
    let measure = |target: &Target, make: MakeRequest, expect: u16| {
        measure_for(target, make, expect, args.duration)
    };

    if wants("ceiling") {
        let o = measure(&anon, phases.ceiling.clone(), 200).await?;
        report.phase(PhaseResult::new(
            "ceiling",
            "GET /livez (ceiling, before)",
            &o,
        ));
    }
    if wants("p1") {
        let (sampler, sampled) = rss_sampler(server.pid());
        let o = measure(&scim, phases.p1.clone(), 200).await?;
        sampler.abort();
        let (hwm, _) = server.memory()?;
        report.rss_p1 = Some((hwm, sampled.load(Ordering::Relaxed)));
        report.phase(PhaseResult::new(
            "p1",
            "P1 GET /Users?filter=userName eq \"…\"",
            &o,
        ));
    }
    if wants("attack") {
        let attacker = anon.from(ATTACKER.into()).with_token("not-a-token");
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flood = tokio::spawn(flood(attacker, ATTACK_CONNECTIONS, stop.clone()));
        let o = measure(&scim, phases.p1.clone(), 200).await?;
        stop.store(true, Ordering::Relaxed);
        let (sent, throttled) = flood.await??;
        eprintln!("attack: the attacker sent {sent} requests, {throttled} answered 429");
        report.phase(PhaseResult::new(
            "attack",
            "P1 while 127.0.0.3 floods bad tokens (32 conns)",
            &o,
        ));
    }
    if wants("oauth_flood") {
        let client_id = inst.create_client(seed::TENANT)?;
        let flooder = anon.from(OAUTH_FLOODER.into());
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flood = tokio::spawn(oauth_flood(flooder, client_id, stop.clone()));
        let o = measure(&scim, phases.p1.clone(), 200).await?;
        stop.store(true, Ordering::Relaxed);
        let counts = flood.await??;
        eprintln!("oauth_flood: wrong-secret token requests answered {counts:?}");
        report.phase(PhaseResult::new(
            "oauth_flood",
            "P1 while 127.0.0.4 posts 200 wrong secrets/s",
            &o,
        ));
    }
    if wants("get_user") {
        let o = measure(&scim, phases.get_user.clone(), 200).await?;
        report.phase(PhaseResult::new("get_user", "GET /Users/{id}", &o));
    }
    if wants("get_group") {
        let o = measure(&scim, phases.get_group.clone(), 200).await?;
        report.phase(PhaseResult::new(
            "get_group",
            "GET /Groups/{id}?excludedAttributes=members",
            &o,
        ));
    }
    if wants("dashboard") {
        // One administrator reloading the page: sequential, one connection, the whole page
        // (every tenant's counts, credentials, chart and failures) per request. The issue's
        // budget is 100 ms at 1M users.
        let settled = server.settle(Duration::from_secs(60)).await?;
        let mut o = dashboard_phase(inst.admin, args.warmup, args.duration).await?;
        o.settled = settled;
        report.phase(PhaseResult::new(
            "dashboard",
            "GET / on the admin listener (dashboard, 1 connection)",
            &o,
        ));
    }
    if wants("walk") {
        let o = measure(&scim, phases.walk.clone(), 200).await?;
        report.phase(PhaseResult::new(
            "walk",
            "GET /Users?startIndex=random&count=100",
            &o,
        ));
    }
    if wants("walk_cursor") {
        let positions = walks::positions(&scim).await?;
        report.note(format!(
            "walk_cursor: one whole walk by cursor (count=1000, attributes=id) read {} users in \
             {:.1} s ({:.0} users/s); the phase pages 100 full users from a random one of its {} \
             positions",
            positions.users,
            positions.seconds,
            positions.users as f64 / positions.seconds,
            positions.cursors.len()
        ));
        let o = measure(&scim, walks::walk_cursor(&positions), 200).await?;
        report.phase(PhaseResult::new(
            "walk_cursor",
            "GET /Users?cursor=random&count=100",
            &o,
        ));
    }
    let feed_phases = ["feed_catchup", "feed_snapshot", "feed_longpoll"];
    if feed_phases.iter().any(|p| wants(p)) {
        let feed_target = anon.with_token(&inst.issue_feed_token(seed::TENANT)?);
        run_feed_phases(&args, &mut report, server_ref, &feed_target, &scim, &seed).await?;
    }
    if wants("p3") {
        // Each timed add is followed, on its connection, by the removal of that member (untimed),
        // so both groups keep their sizes: with adds alone the 10-member group had grown to
        // tens of thousands of members before its phase ended. And the two sizes run in
        // quarter-length slices, big-small-small-big-small-big-big-small, so a machine that gets
        // busier or quieter during P3 weighs on both alike (run one after the other, the first
        // of the pair once measured 30 % faster for no reason of its own).
        let slice = args.duration / 4;
        let mut big: Option<Outcome> = None;
        let mut small: Option<Outcome> = None;
        for slice_is_big in [true, false, false, true, false, true, true, false] {
            let (slot, make) = if slice_is_big {
                (&mut big, &phases.patch_big)
            } else {
                (&mut small, &phases.patch_small)
            };
            let o = measure_for(&scim, make.clone(), 204, slice).await?;
            *slot = Some(match slot.take() {
                Some(earlier) => earlier.merge(o),
                None => o,
            });
        }
        let (big, small) = (
            big.context("P3 measured no slice of the big group")?,
            small.context("P3 measured no slice of the small group")?,
        );
        report.note(
            "P3: each timed add is followed on its connection by the untimed removal of that \
             member (the groups keep their sizes); its req/s counts the adds, its server µs/req \
             every request; slices alternate big, small, small, big, small, big, big, small"
                .to_string(),
        );
        report.phase(PhaseResult::new(
            "p3_big",
            &format!(
                "P3 PATCH add member, {}-member group",
                seed.big_group_members
            ),
            &big,
        ));
        report.phase(PhaseResult::new(
            "p3_small",
            &format!(
                "P3 PATCH add member, {}-member group",
                seed.small_group_members
            ),
            &small,
        ));
    }
    if wants("p2") {
        let o = measure(&scim, phases.p2.clone(), 201).await?;
        report.phase(PhaseResult::new(
            "p2",
            "P2 POST /Users (synchronous=FULL)",
            &o,
        ));
    }
    if wants("ceiling") {
        let o = measure(&anon, phases.ceiling.clone(), 200).await?;
        report.phase(PhaseResult::new(
            "ceiling",
            "GET /livez (ceiling, after)",
            &o,
        ));
    }
    report.rss_end = Some(server.memory()?);
    server.stop()?;

    report.print();
    if let Some(dir) = args.out.parent() {
        fs::create_dir_all(dir)?;
    }
    fs::write(&args.out, serde_json::to_string_pretty(&report.to_json())?)?;
    eprintln!("wrote {}", args.out.display());
    Ok(())
}

/// The change feed's phases (`feed`), each one consumer, measured with the server's CPU around
/// it; reported as phases and against the feed's targets.
async fn run_feed_phases(
    args: &Args,
    report: &mut Report,
    server: &server::Running,
    feed_target: &Target,
    scim: &Target,
    seed: &Arc<seed::Seed>,
) -> Result<()> {
    let wants = |p: &str| args.phases.iter().any(|x| x == p);
    let cpu = || -> Result<(f64, f64)> {
        Ok((
            server.cpu_seconds()?,
            server::cpu_seconds("/proc/self/stat")?,
        ))
    };
    let result = |key: &str, label: &str, o: &feed::FeedOutcome, settled, before: (f64, f64)| {
        let after = cpu()?;
        let n = o.requests.max(1) as f64;
        Ok::<PhaseResult, anyhow::Error>(PhaseResult {
            key: key.to_string(),
            label: label.to_string(),
            rps: o.requests as f64 / o.seconds.max(1e-9),
            p50_ms: o.quantile_ms(0.50),
            p99_ms: o.quantile_ms(0.99),
            requests: o.requests - o.errors,
            errors: o.errors,
            first_error: o.first_error.clone(),
            server_cpu_us: (after.0 - before.0) * 1e6 / n,
            client_cpu_us: (after.1 - before.1) * 1e6 / n,
            settled,
        })
    };
    if wants("feed_catchup") {
        // The whole log at 1M users takes ~50 s at the target rate: allow six phase durations.
        let settled = server.settle(Duration::from_secs(60)).await?;
        let before = cpu()?;
        let o = feed::catchup(feed_target, args.duration * 6).await?;
        report.feed_catchup = Some((o.items_per_second(), o.items, o.complete));
        if o.complete && o.items < seed.changes {
            report.note(format!(
                "feed_catchup read {} changes, fewer than the {} the seed left: the log was pruned",
                o.items, seed.changes
            ));
        }
        let label = "feed: GET changes?after=…&limit=1000 (1 consumer)";
        report.phase(result("feed_catchup", label, &o, settled, before)?);
    }
    if wants("feed_snapshot") {
        let settled = server.settle(Duration::from_secs(60)).await?;
        let at_start = server.memory()?.1;
        let own_peak = feed::reset_peak_rss(server.pid());
        let (sampler, sampled) = rss_sampler(server.pid());
        let before = cpu()?;
        let (o, users) = feed::snapshot(feed_target).await?;
        sampler.abort();
        let (hwm, _) = server.memory()?;
        let peak = match own_peak {
            true => hwm,
            false => sampled.load(Ordering::Relaxed),
        };
        report.feed_snapshot = Some((users as f64 / o.seconds.max(1e-9), users));
        report.rss_snapshot = Some((peak, own_peak, at_start));
        let label = "feed: GET snapshot?count=1000 (1 consumer)";
        report.phase(result("feed_snapshot", label, &o, settled, before)?);
    }
    if wants("feed_longpoll") {
        let settled = server.settle(Duration::from_secs(60)).await?;
        let before = cpu()?;
        let o = feed::longpoll(feed_target, scim, seed, args.duration).await?;
        report.feed_longpoll = Some((
            o.quantile_ms(0.5),
            o.quantile_ms(0.99),
            o.latencies_ms.len(),
        ));
        let label = "feed: PATCH → waiting consumer (20 writes/s)";
        report.phase(result("feed_longpoll", label, &o, settled, before)?);
    }
    Ok(())
}

/// One filtered GET must find exactly its user: a bench that measures empty answers is useless.
async fn check_filter(scim: &Target, seed: &seed::Seed) -> Result<()> {
    let name = &seed.user_names[seed.users / 2];
    let path = format!(
        "{BASE}/Users?filter={}",
        filter_query(&format!("userName eq \"{name}\""))
    );
    let (status, body) = scim.once(&Req::get(path)).await?;
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if status != 200 || v["totalResults"] != json!(1) {
        bail!(
            "sanity check failed: filter for {name} answered {status}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    Ok(())
}

/// Track the server's resident set while a phase runs: the highest `VmRSS` seen, in bytes
/// (`VmHWM` afterwards gives the true peak; this shows the level it runs at).
fn rss_sampler(pid: u32) -> (tokio::task::JoinHandle<()>, Arc<AtomicU64>) {
    let peak = Arc::new(AtomicU64::new(0));
    let seen = peak.clone();
    let task = tokio::spawn(async move {
        loop {
            if let Ok(s) = fs::read_to_string(format!("/proc/{pid}/status")) {
                if let Some(kib) = s
                    .lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|v| v.parse::<u64>().ok())
                {
                    seen.fetch_max(kib * 1024, Ordering::Relaxed);
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    (task, peak)
}

/// The attacker of the attack phase: `connections` keep-alive connections sending requests
/// with a bad token until `stop`, reconnecting when the server closes one. Returns how many it
/// sent and how many were answered 429.
async fn flood(
    attacker: Target,
    connections: usize,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> Result<(u64, u64)> {
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (attacker, stop) = (attacker.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let (mut sent, mut throttled) = (0u64, 0u64);
            let req = Req::get(format!("{BASE}/Users"));
            while !stop.load(Ordering::Relaxed) {
                let Ok(mut sender) = attacker.connect().await else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                while !stop.load(Ordering::Relaxed) {
                    match attacker.send(&mut sender, &req).await {
                        Ok((status, _)) => {
                            sent += 1;
                            throttled += u64::from(status == 429);
                        }
                        Err(_) => break,
                    }
                }
            }
            (sent, throttled)
        }));
    }
    let mut total = (0, 0);
    for t in tasks {
        let (s, t) = t.await?;
        total = (total.0 + s, total.1 + t);
    }
    Ok(total)
}

/// The flooder of the OAuth phase: `OAUTH_FLOOD_PER_SECOND` token requests with the real client
/// id and a wrong secret (HTTP Basic), paced over four keep-alive connections until `stop`.
/// Returns how many were answered with each status.
async fn oauth_flood(
    flooder: Target,
    client_id: String,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> Result<std::collections::BTreeMap<u16, u64>> {
    const CONNECTIONS: u64 = 4;
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD
        .encode(format!("{client_id}:wrong-secret-{}", "x".repeat(40)));
    let mut tasks = Vec::new();
    for _ in 0..CONNECTIONS {
        let (flooder, stop, basic) = (flooder.clone(), stop.clone(), basic.clone());
        tasks.push(tokio::spawn(async move {
            let mut counts = std::collections::BTreeMap::<u16, u64>::new();
            let req = Req::with_body(
                Method::POST,
                "/oauth2/token",
                "grant_type=client_credentials".to_string(),
            )
            .header("content-type", "application/x-www-form-urlencoded")
            .header("authorization", format!("Basic {basic}"));
            let period = Duration::from_micros(1_000_000 * CONNECTIONS / OAUTH_FLOOD_PER_SECOND);
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            let mut sender = None;
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                if sender.is_none() {
                    sender = flooder.connect().await.ok();
                }
                let Some(s) = sender.as_mut() else { continue };
                match flooder.send(s, &req).await {
                    Ok((status, _)) => *counts.entry(status).or_default() += 1,
                    Err(_) => sender = None,
                }
            }
            counts
        }));
    }
    let mut total = std::collections::BTreeMap::new();
    for t in tasks {
        for (status, n) in t.await? {
            *total.entry(status).or_default() += n;
        }
    }
    Ok(total)
}

/// The dashboard phase: `GET /` on the admin listener (plain HTTP, loopback) in a loop on one
/// keep-alive-free connection per request, as a browser reload does; warm-up not recorded.
async fn dashboard_phase(
    admin: SocketAddr,
    warmup: Duration,
    duration: Duration,
) -> Result<Outcome> {
    tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let get = || -> Result<u16> {
            let mut s = std::net::TcpStream::connect(admin)?;
            write!(
                s,
                "GET / HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
                admin.port()
            )?;
            let mut buf = Vec::new();
            s.read_to_end(&mut buf)?;
            let head = String::from_utf8_lossy(&buf[..buf.len().min(16)]).to_string();
            Ok(head
                .split(' ')
                .nth(1)
                .and_then(|c| c.parse().ok())
                .unwrap_or(0))
        };
        let until = std::time::Instant::now() + warmup;
        while std::time::Instant::now() < until {
            get()?;
        }
        let (mut latencies, mut errors, mut first_error) = (Vec::new(), 0u64, None);
        let start = std::time::Instant::now();
        while start.elapsed() < duration {
            let t = std::time::Instant::now();
            match get() {
                Ok(200) => latencies.push(t.elapsed().as_micros().min(u32::MAX as u128) as u32),
                Ok(other) => {
                    errors += 1;
                    first_error.get_or_insert(format!("status {other}"));
                }
                Err(e) => {
                    errors += 1;
                    first_error.get_or_insert(e.to_string());
                }
            }
        }
        Ok(Outcome::from_latencies(
            latencies,
            start.elapsed(),
            errors,
            first_error,
        ))
    })
    .await?
}

/// The request makers of every phase.
struct Phases {
    ceiling: MakeRequest,
    p1: MakeRequest,
    get_user: MakeRequest,
    get_group: MakeRequest,
    walk: MakeRequest,
    patch_big: MakeRequest,
    patch_small: MakeRequest,
    p2: MakeRequest,
}

fn phase_table(seed: &Arc<seed::Seed>) -> Phases {
    let patch = |group: String| -> MakeRequest {
        let seed = seed.clone();
        Arc::new(move |n| {
            let pool = seed.outsiders();
            let member = &pool[n as usize % pool.len()];
            let add = json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "add", "path": "members", "value": [{"value": member}]}],
            });
            let remove = json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "remove", "path": format!("members[value eq \"{member}\"]")}],
            });
            let path = format!("{BASE}/Groups/{group}");
            Req::with_body(Method::PATCH, path.clone(), add.to_string()).then(Req::with_body(
                Method::PATCH,
                path,
                remove.to_string(),
            ))
        })
    };
    let (s1, s2) = (seed.clone(), seed.clone());
    let users = seed.users;
    let big = seed.big_group_id.clone();
    Phases {
        ceiling: Arc::new(|_| Req::get("/livez")),
        p1: Arc::new(move |n| {
            let name = &s1.user_names[spread(n, s1.users)];
            Req::get(format!(
                "{BASE}/Users?filter={}",
                filter_query(&format!("userName eq \"{name}\""))
            ))
        }),
        get_user: Arc::new(move |n| {
            Req::get(format!("{BASE}/Users/{}", s2.user_ids[spread(n, s2.users)]))
        }),
        get_group: Arc::new(move |_| {
            Req::get(format!("{BASE}/Groups/{big}?excludedAttributes=members"))
        }),
        walk: Arc::new(move |n| {
            let start = 1 + spread(n, users.saturating_sub(100).max(1));
            Req::get(format!("{BASE}/Users?startIndex={start}&count=100"))
        }),
        patch_big: patch(seed.big_group_id.clone()),
        patch_small: patch(seed.small_group_id.clone()),
        p2: Arc::new(move |n| {
            let body = seed::user_body(n, "new.contoso.example");
            Req::with_body(Method::POST, format!("{BASE}/Users"), body.to_string())
        }),
    }
}

impl PhaseResult {
    fn new(key: &str, label: &str, o: &Outcome) -> PhaseResult {
        PhaseResult {
            key: key.to_string(),
            label: label.to_string(),
            rps: o.rps(),
            p50_ms: o.quantile_ms(0.50),
            p99_ms: o.quantile_ms(0.99),
            requests: o.ok,
            errors: o.errors,
            first_error: o.first_error.clone(),
            server_cpu_us: o.server_cpu_s * 1e6 / o.completed.max(1) as f64,
            client_cpu_us: o.client_cpu_s * 1e6 / o.completed.max(1) as f64,
            settled: o.settled,
        }
    }
}
