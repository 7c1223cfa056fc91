//! [`Network`]: a private IPv4 network of Linux network namespaces, one per process under test,
//! so a test can cut a real process off and heal it (`ip link set ... down/up`).
//!
//! ```text
//!   root namespace (the test's own gRPC clients)
//!     pr<pid>-<n> 10.77.X.1/24
//!        │ veth
//!   hub namespace "pulse-<pid>-<n>-hub": bridge br0 with ports hroot (the veth above), h0, h1, …
//!        │ veth (h0)                    │ veth (h1)
//!   namespace "pulse-<pid>-<n>-<name>"  namespace of the second host   …
//!     eth0 10.77.X.10/24                  eth0 10.77.X.11/24
//! ```
//!
//! - The bridge lives in a namespace of its own (the hub), so its ports can carry fixed names
//!   and nothing of the host's network is touched but one veth.
//! - The test process reaches every host through that veth: the root namespace gets address `.1`
//!   on the bridge's subnet, so a plain `http://10.77.X.10:PORT` channel works from the test.
//! - A process runs in its host namespace through [`Network::wrapper`] (`ip netns exec NAME`,
//!   which `exec`s the command: the child's pid is the process's own, so SIGKILL reaches it).
//! - [`Network::cut`] sets the host's bridge port down: every packet to or from the host is
//!   dropped (connections hang, as across a real partition, rather than being refused);
//!   [`Network::heal`] sets it up again.
//! - Names carry the test process's pid and a per-process counter, and the subnet's third octet
//!   is one no interface of the root namespace uses yet, so parallel runs do not clash.
//! - `Drop` deletes everything created (the root veth, the hub, every host namespace), even when
//!   the test fails; the processes in the namespaces should be stopped first (a namespace that
//!   still holds a process disappears when that process exits).
//!
//! Needs root and `ip` (iproute2): [`Network::create`] answers why it cannot run otherwise.

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The first two octets of every subnet the harness creates.
const SUBNET_PREFIX: &str = "10.77";
/// Host part of the first host's address (the root namespace has `.1`).
const FIRST_HOST: usize = 10;

/// Networks created by this test process (keeps names unique within it).
static CREATED: AtomicUsize = AtomicUsize::new(0);

/// A process's namespace on the [`Network`].
#[derive(Clone, Debug)]
pub struct Host {
    /// Its network namespace (`ip netns exec` takes it).
    pub namespace: String,
    /// Its IPv4 address (no port).
    pub ip: String,
    /// Its port on the bridge, in the hub namespace.
    bridge_port: String,
}

/// A bridge in a namespace of its own, one namespace per host, and a veth from the root
/// namespace into the bridge; removed on drop.
pub struct Network {
    /// Prefix of every namespace name: `pulse-<pid>-<n>`.
    prefix: String,
    /// The namespace holding the bridge.
    hub: String,
    /// The veth end in the root namespace.
    root_link: String,
    /// `10.77.X` (the subnet is `10.77.X.0/24`).
    subnet: String,
    /// Hosts added, in order.
    hosts: Vec<Host>,
    /// Whether the hub namespace and the root veth exist (what `Drop` must delete).
    hub_created: bool,
    root_link_created: bool,
}

impl Network {
    /// Creates the hub with its bridge and the root veth, or says why it cannot: not root, no
    /// `ip`, or namespaces not permitted. Panics if a later step fails (a broken setup is not a
    /// reason to skip).
    pub fn create() -> Result<Self, String> {
        if !running_as_root() {
            return Err("network namespaces need root (the effective uid is not 0)".into());
        }
        match Command::new("ip").arg("-V").output() {
            Ok(output) if output.status.success() => {}
            Ok(output) => return Err(format!("`ip -V` failed: {}", String::from_utf8_lossy(&output.stderr))),
            Err(e) => return Err(format!("`ip` (iproute2) is not available: {e}")),
        }
        let number = CREATED.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        let prefix = format!("pulse-{pid}-{number}");
        let subnet = free_subnet()?;
        let mut network = Self {
            hub: format!("{prefix}-hub"),
            // Interface names are at most 15 bytes: "pr" + pid (<= 7 digits) + "-" + n.
            root_link: format!("pr{pid}-{number}"),
            prefix,
            subnet,
            hosts: Vec::new(),
            hub_created: false,
            root_link_created: false,
        };
        ip(&["netns", "add", &network.hub]).map_err(|e| format!("`ip netns` is unavailable: {e}"))?;
        network.hub_created = true;
        let hub = network.hub.clone();
        must(ip(&["-n", &hub, "link", "set", "dev", "lo", "up"]));
        must(ip(&["-n", &hub, "link", "add", "br0", "type", "bridge"]));
        must(ip(&["-n", &hub, "link", "set", "dev", "br0", "up"]));
        // Recorded first, so Drop deletes it even if the command half-failed.
        network.root_link_created = true;
        let root_link = network.root_link.clone();
        must(ip(&["link", "add", &root_link, "type", "veth", "peer", "name", "hroot", "netns", &hub]));
        must(ip(&["-n", &hub, "link", "set", "dev", "hroot", "master", "br0", "up"]));
        let root_address = format!("{}.1/24", network.subnet);
        must(ip(&["addr", "add", &root_address, "dev", &root_link]));
        must(ip(&["link", "set", "dev", &root_link, "up"]));
        Ok(network)
    }

    /// Adds a host namespace named after `name` (e.g. `node-1`) with a veth into the bridge
    /// and the next address of the subnet.
    pub fn add_host(&mut self, name: &str) -> Host {
        let index = self.hosts.len();
        let host = Host {
            namespace: format!("{}-{name}", self.prefix),
            ip: format!("{}.{}", self.subnet, FIRST_HOST + index),
            bridge_port: format!("h{index}"),
        };
        // Recorded first, so Drop deletes it even if a later step fails.
        self.hosts.push(host.clone());
        must(ip(&["netns", "add", &host.namespace]));
        let hub = self.hub.clone();
        must(ip(&[
            "-n",
            &hub,
            "link",
            "add",
            &host.bridge_port,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            &host.namespace,
        ]));
        must(ip(&["-n", &hub, "link", "set", "dev", &host.bridge_port, "master", "br0", "up"]));
        must(ip(&["-n", &host.namespace, "link", "set", "dev", "lo", "up"]));
        must(ip(&["-n", &host.namespace, "addr", "add", &format!("{}/24", host.ip), "dev", "eth0"]));
        must(ip(&["-n", &host.namespace, "link", "set", "dev", "eth0", "up"]));
        host
    }

    /// The command prefix that runs a program inside `host`'s namespace.
    pub fn wrapper(&self, host: &Host) -> Vec<String> {
        ["ip", "netns", "exec", &host.namespace].iter().map(|part| (*part).to_owned()).collect()
    }

    /// Cuts `host` off: its bridge port goes down, every packet to or from it is dropped.
    pub fn cut(&self, host: &Host) {
        must(ip(&["-n", &self.hub, "link", "set", "dev", &host.bridge_port, "down"]));
    }

    /// Reconnects a host [`Self::cut`] off.
    pub fn heal(&self, host: &Host) {
        must(ip(&["-n", &self.hub, "link", "set", "dev", &host.bridge_port, "up"]));
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        // Errors are ignored: a step may never have run, and Drop must not panic.
        if self.root_link_created {
            let _ = ip(&["link", "del", &self.root_link]);
        }
        for host in &self.hosts {
            let _ = ip(&["netns", "del", &host.namespace]);
        }
        if self.hub_created {
            // Deleting the hub deletes the bridge and its ports, hence every veth pair.
            let _ = ip(&["netns", "del", &self.hub]);
        }
    }
}

/// Runs `ip <args>`; its stderr on failure.
fn ip(args: &[&str]) -> Result<(), String> {
    let output = Command::new("ip").args(args).output().map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
    if output.status.success() {
        return Ok(());
    }
    Err(format!("ip {} failed: {}", args.join(" "), String::from_utf8_lossy(&output.stderr).trim()))
}

fn must(result: Result<(), String>) {
    if let Err(message) = result {
        panic!("{message}");
    }
}

/// Whether the effective uid is 0 (the `Uid:` line of /proc/self/status: real, effective, …).
fn running_as_root() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .is_some_and(|effective| effective == "0")
}

/// A `10.77.X` whose /24 no address of the root namespace is in, starting from one derived from
/// the pid (two runs checking at the same instant could still pick the same one: unlikely).
fn free_subnet() -> Result<String, String> {
    let output = Command::new("ip")
        .args(["-4", "-o", "addr", "show"])
        .output()
        .map_err(|e| format!("ip addr show: {e}"))?;
    let addresses = String::from_utf8_lossy(&output.stdout).into_owned();
    let start = std::process::id() as usize % 250;
    for offset in 0..250 {
        let subnet = format!("{SUBNET_PREFIX}.{}", 1 + (start + offset) % 250);
        if !addresses.contains(&format!(" {subnet}.")) {
            return Ok(subnet);
        }
    }
    Err(format!("every {SUBNET_PREFIX}.X.0/24 is in use in the root namespace"))
}
