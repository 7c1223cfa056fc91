//! [`PulsedProcess`]: a real `pulsed` child process (standalone, coordinator or node) on a free
//! loopback port, with its log in a file; SIGKILLed when dropped, so a failing test leaves
//! nothing behind. [`pulsed_binary`] and [`pulsectl_binary`] build the binaries once per test
//! process.
//! [`PulsedProcess::start_wrapped`] runs it through a wrapper command (e.g. `ip netns exec NS`,
//! see [`crate::netns`]).

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// How long a process may take to report SERVING.
pub const STARTUP: Duration = Duration::from_secs(60);

/// A free TCP port of 127.0.0.1 (bound then released: another process may race for it, which
/// the test would see as a start failure, never as a wrong result).
pub fn free_address() -> String {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    format!("127.0.0.1:{port}")
}

/// A running `pulsed` child process.
pub struct PulsedProcess {
    child: Child,
    /// Its gRPC address.
    pub address: String,
    /// Its log file.
    pub log: PathBuf,
    binary: PathBuf,
    args: Vec<String>,
    /// Command the binary runs through (`wrapper... pulsed args...`); empty for none.
    wrapper: Vec<String>,
}

impl PulsedProcess {
    /// Starts `pulsed <args>` (the args include `--listen address`), logging to `log`.
    pub fn start(address: &str, args: Vec<String>, log: PathBuf) -> Self {
        Self::start_wrapped(Vec::new(), address, args, log)
    }

    /// Starts `wrapper... pulsed <args>`, logging to `log`. The wrapper must `exec` the command
    /// (as `ip netns exec` does), so that [`Self::pid`] and [`Self::kill`] reach `pulsed` itself.
    pub fn start_wrapped(wrapper: Vec<String>, address: &str, args: Vec<String>, log: PathBuf) -> Self {
        let binary = pulsed_binary().to_owned();
        let child = spawn(&wrapper, &binary, &args, &log);
        Self { child, address: address.to_owned(), log, binary, args, wrapper }
    }

    /// The OS process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Polls the health service until SERVING, failing if the process exits or [`STARTUP`]
    /// passes (the server is another process: there is no signal to wait on).
    pub async fn wait_serving(&mut self) -> Channel {
        let started = Instant::now();
        for _attempt in 0..1200 {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "pulsed exited with {status}: {}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            assert!(started.elapsed() < STARTUP, "pulsed not serving after {STARTUP:?}");
            let endpoint = Endpoint::from_shared(format!("http://{}", self.address)).unwrap();
            if let Ok(Ok(channel)) = tokio::time::timeout(Duration::from_secs(1), endpoint.connect()).await {
                let request = HealthCheckRequest { service: String::new() };
                let answer = tokio::time::timeout(
                    Duration::from_secs(1),
                    HealthClient::new(channel.clone()).check(request),
                )
                .await;
                if let Ok(Ok(response)) = answer
                    && response.into_inner().status == ServingStatus::Serving as i32
                {
                    return channel;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("pulsed not serving after 1200 attempts");
    }

    /// SIGKILL, then reap the process.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the same command again (after [`Self::kill`]), appending to the same log.
    pub fn restart(&mut self) {
        self.kill();
        self.child = spawn(&self.wrapper, &self.binary, &self.args, &self.log);
    }
}

impl Drop for PulsedProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

fn spawn(wrapper: &[String], binary: &Path, args: &[String], log: &Path) -> Child {
    let log_file = File::options().create(true).append(true).open(log).unwrap();
    let mut command = match wrapper.split_first() {
        Some((program, wrapper_args)) => {
            let mut command = Command::new(program);
            command.args(wrapper_args).arg(binary);
            command
        }
        None => Command::new(binary),
    };
    command
        .args(args)
        .env("PULSE_LOG", std::env::var("PULSE_LOG").unwrap_or_else(|_| "info".into()))
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().unwrap())
        .stderr(log_file)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()))
}

/// The `pulsed` binary of this workspace, built if needed (`cargo build --workspace --bins`, a
/// no-op when fresh; `PULSED_BIN` overrides).
pub fn pulsed_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| workspace_binary("pulsed", "PULSED_BIN"))
}

/// The `pulsectl` binary of this workspace, built if needed (`PULSECTL_BIN` overrides).
pub fn pulsectl_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| workspace_binary("pulsectl", "PULSECTL_BIN"))
}

/// Builds the workspace's binaries (a no-op when fresh) and returns the path of binary `name`,
/// unless the environment variable `overridden_by` names one. All of them at once, with the
/// workspace's features: `cargo build -p NAME` resolves features for that one package, so each
/// binary built that way recompiled a share of the dependencies again (minutes of a CI run).
fn workspace_binary(name: &str, overridden_by: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(overridden_by) {
        return PathBuf::from(path);
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .current_dir(workspace)
        .args(["build", "--quiet", "--workspace", "--bins", "--message-format=json"])
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("running cargo build --workspace --bins: {e}"));
    assert!(output.status.success(), "cargo build --workspace --bins failed");
    // The compiler-artifact message of the binary names its path.
    let text = String::from_utf8(output.stdout).unwrap();
    text.lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|message| message["target"]["name"] == name && message["target"]["kind"][0] == "bin")
        .find_map(|message| message["executable"].as_str().map(PathBuf::from))
        .unwrap_or_else(|| panic!("cargo build --workspace --bins named no executable {name}"))
}
