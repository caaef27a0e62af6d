//! The server under test: the real `grouptalk-scim` binary (release profile), started with a
//! config in the bench's run directory, its log going to a file. Also what is measured from
//! outside the process: time from spawn to the first 200 from the readiness endpoint, and
//! memory from `/proc/PID/status`.

use std::fs;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rustls_pki_types::CertificateDer;

use crate::client::{Req, Target};

/// A directory with a config, a certificate and a data dir, ready to `serve`.
pub struct Instance {
    pub dir: PathBuf,
    pub config: PathBuf,
    pub bin: PathBuf,
    pub addr: SocketAddr,
    /// The admin listener (plain HTTP on loopback): the dashboard phase's target.
    pub admin: SocketAddr,
    pub cert: CertificateDer<'static>,
}

impl Instance {
    /// Write `dir/config.toml` and a fresh self-signed certificate for `localhost`.
    pub fn prepare(dir: &Path, bin: &Path) -> Result<Instance> {
        fs::create_dir_all(dir.join("data"))?;
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()])?;
        fs::write(dir.join("cert.pem"), ck.cert.pem())?;
        fs::write(dir.join("key.pem"), ck.signing_key.serialize_pem())?;
        // A fixed port (picked free now) so readiness can be polled from the moment of spawn.
        let addr = TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let admin = TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let config = dir.join("config.toml");
        // Defaults everywhere except the addresses, the per-token rate limit, which exists to
        // stop a runaway client and would otherwise be all the bench measures, and the deletion
        // brake's threshold. P3 removes every member it adds, to keep the groups' sizes; at the
        // default threshold (5 % of the active users within the hour) that churn engages the
        // brake after a few thousand removals and the rest of the phase measures the brake
        // holding every change of the two groups (and the phases after it run with them held),
        // not Entra's membership updates (P3 removes more members than the directory has
        // users). With `max_removals` at four billion the brake still counts and checks every
        // removal, but never reaches its threshold. The held path is measured by overriding it:
        // GROUPTALK_SCIM_BRAKE__MAX_REMOVALS=50 in a wrapper given as --server-bin (README
        // "Performance").
        fs::write(
            &config,
            format!(
                "data_dir = \"{d}/data\"\n\
                 [server]\nlisten = \"{addr}\"\npublic_url = \"https://localhost:{port}\"\n\
                 [tls]\ncert = \"{d}/cert.pem\"\nkey = \"{d}/key.pem\"\n\
                 [admin]\nlisten = \"{admin}\"\n\
                 [limits]\nrate_per_token = 1000000000\nrate_burst = 1000000000\n\
                 [brake]\nmax_removals = 4000000000\n",
                d = dir.display(),
                port = addr.port()
            ),
        )?;
        Ok(Instance {
            dir: dir.to_path_buf(),
            config,
            bin: bin.to_path_buf(),
            addr,
            admin,
            cert: ck.cert.der().clone(),
        })
    }

    pub fn database(&self) -> PathBuf {
        self.dir.join("data").join("grouptalk-scim.db")
    }

    pub fn target(&self) -> Result<Target> {
        Target::new(self.addr, self.cert.clone())
    }

    /// Run a CLI command with this instance's config; returns stdout.
    pub fn cli(&self, args: &[&str]) -> Result<String> {
        let out = Command::new(&self.bin)
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .env_remove("GROUPTALK_SCIM_CONFIG")
            .output()?;
        if !out.status.success() {
            bail!(
                "grouptalk-scim {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Issue a token for `tenant` through the CLI, exactly as an administrator would.
    pub fn issue_token(&self, tenant: &str) -> Result<String> {
        self.issue_token_with(&["--tenant", tenant, "--label", "bench"])
    }

    /// A long-lived token with scope `feed.read` for `tenant` (the feed phases' consumer).
    pub fn issue_feed_token(&self, tenant: &str) -> Result<String> {
        self.issue_token_with(&[
            "--tenant",
            tenant,
            "--label",
            "bench-feed",
            "--scope",
            "feed.read",
        ])
    }

    fn issue_token_with(&self, args: &[&str]) -> Result<String> {
        let mut all = vec!["token", "issue"];
        all.extend_from_slice(args);
        let out = self.cli(&all)?;
        out.lines()
            .last()
            .map(|l| l.trim().to_string())
            .context("token issue printed nothing")
    }

    /// Create an OAuth client for `tenant` through the CLI; returns its client id (the secret
    /// is not needed: the OAuth phase plays an attacker who does not have it).
    pub fn create_client(&self, tenant: &str) -> Result<String> {
        let out = self.cli(&["client", "create", "--tenant", tenant, "--json"])?;
        let v: serde_json::Value =
            serde_json::from_str(out.trim()).context("client create --json")?;
        v["client_id"]
            .as_str()
            .map(str::to_string)
            .context("client create printed no client_id")
    }

    /// Start `serve` and wait for readiness. Returns the process and the time from spawn to
    /// the first `200` of the readiness endpoint.
    pub async fn start(&self, ready: &mut ReadyPath) -> Result<(Running, Duration)> {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("server.log"))?;
        let target = self.target()?;
        let spawned = Instant::now();
        let child = Command::new(&self.bin)
            .arg("--config")
            .arg(&self.config)
            .arg("serve")
            .env_remove("GROUPTALK_SCIM_CONFIG")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("start {}", self.bin.display()))?;
        let mut running = Running { child };
        let deadline = spawned + Duration::from_secs(30);
        loop {
            if let Some(status) = running.child.try_wait()? {
                bail!(
                    "server exited with {status} before it was ready; see {}",
                    self.dir.join("server.log").display()
                );
            }
            if let Ok((status, _)) = target.once(&Req::get(ready.path())).await {
                match status {
                    200 => return Ok((running, spawned.elapsed())),
                    404 if *ready == ReadyPath::Readyz => *ready = ReadyPath::Healthz,
                    _ => {}
                }
            }
            if Instant::now() > deadline {
                bail!("server not ready after 30 s");
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

/// The readiness endpoint: `/readyz` when the server has one, else `/healthz` (which also
/// touches the database).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadyPath {
    Readyz,
    Healthz,
}

impl ReadyPath {
    pub fn path(self) -> &'static str {
        match self {
            ReadyPath::Readyz => "/readyz",
            ReadyPath::Healthz => "/healthz",
        }
    }
}

/// A running server; stopped (SIGTERM, then wait) on `stop` or drop.
pub struct Running {
    child: Child,
}

impl Running {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `VmHWM` (peak resident set) and `VmRSS` in bytes.
    pub fn memory(&self) -> Result<(u64, u64)> {
        let status = fs::read_to_string(format!("/proc/{}/status", self.pid()))?;
        let field = |name: &str| -> Result<u64> {
            let line = status
                .lines()
                .find(|l| l.starts_with(name))
                .with_context(|| format!("{name} missing from /proc status"))?;
            let kib: u64 = line
                .split_whitespace()
                .nth(1)
                .context("malformed /proc status")?
                .parse()?;
            Ok(kib * 1024)
        };
        Ok((field("VmHWM:")?, field("VmRSS:")?))
    }

    /// CPU time (user + system) the server has used so far, all threads, in seconds.
    pub fn cpu_seconds(&self) -> Result<f64> {
        cpu_seconds(&format!("/proc/{}/stat", self.pid()))
    }

    /// Wait until the server is idle — under 5 % of a core over 200 ms — for at most `limit`.
    /// Requests the generator gave up on at the end of a phase (a paged walk takes seconds each)
    /// keep running in the server; their CPU would otherwise count against the next phase.
    /// Returns whether it settled.
    pub async fn settle(&self, limit: std::time::Duration) -> Result<bool> {
        let started = std::time::Instant::now();
        loop {
            let before = self.cpu_seconds()?;
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            if self.cpu_seconds()? - before < 0.01 {
                return Ok(true);
            }
            if started.elapsed() > limit {
                return Ok(false);
            }
        }
    }

    pub fn stop(mut self) -> Result<()> {
        self.terminate()
    }

    fn terminate(&mut self) -> Result<()> {
        if self.child.try_wait()?.is_none() {
            Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status()?;
            self.child.wait()?;
        }
        Ok(())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.terminate().is_err() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// utime + stime from a `/proc/…/stat` file, in seconds (USER_HZ is 100 on Linux).
pub fn cpu_seconds(stat_path: &str) -> Result<f64> {
    let stat = fs::read_to_string(stat_path)?;
    // The command name (field 2) may contain spaces: count fields after its closing ')'.
    let rest = stat.rsplit_once(')').context("malformed stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks =
        |i: usize| -> Result<f64> { Ok(fields.get(i).context("short stat")?.parse::<f64>()?) };
    // After ')': state is index 0, so utime (field 14) is index 11 and stime index 12.
    Ok((ticks(11)? + ticks(12)?) / 100.0)
}
