//! Two "hosts" on one machine: each is a shm prefix with its own `ringcast-bridge`
//! process, the two joined over TCP on loopback. Unique prefixes, domains and ports per
//! test; segments removed and processes killed on drop.
#![allow(dead_code)]

use std::fs::File;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use ringcast::{Overflow, Publisher, PublisherConfig, Subscriber, SubscriberOptions};

/// The bridge binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_ringcast-bridge");
/// How long anything here may take to appear: generous, the machine is shared.
pub const WAIT: Duration = Duration::from_secs(30);

fn unique(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{tag}{}x{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A free TCP port on loopback (bound then released: a small race, fine on a test box).
/// The TCP ports process `pid` listens on (its sockets in LISTEN state, from /proc).
pub fn listening_ports(pid: i32) -> Vec<u16> {
    let inodes: std::collections::HashSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                .filter_map(|l| {
                    let l = l.to_string_lossy().into_owned();
                    Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_owned())
                })
                .collect()
        })
        .unwrap_or_default();
    let mut ports = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // local address, state (0A: LISTEN), inode
            if f.len() > 9 && f[3] == "0A" && inodes.contains(f[9]) {
                let port = f[1].rsplit(':').next().unwrap_or("0");
                ports.push(u16::from_str_radix(port, 16).unwrap_or(0));
            }
        }
    }
    ports
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// How long `Pair::bridge_a` waits for its port to listen (a bridge that fails to listen
/// is the test's to find).
const LISTEN_WAIT: Duration = Duration::from_secs(5);

/// Whether a socket listens on TCP `port` (`/proc/net/tcp`, state 0A), without
/// connecting to it; `None` where the table cannot be read (nothing to wait for then).
fn listening(port: u16) -> Option<bool> {
    let suffix = format!(":{port:04X}");
    let tables: Vec<String> = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .collect();
    if tables.is_empty() {
        return None;
    }
    Some(tables.iter().any(|t| {
        t.lines().skip(1).any(|l| {
            let mut cols = l.split_whitespace().skip(1);
            let local = cols.next().unwrap_or("");
            let state = cols.nth(1).unwrap_or("");
            local.ends_with(&suffix) && state == "0A"
        })
    }))
}

/// A running `ringcast-bridge`; its standard error goes to a file, printed if the test
/// fails.
pub struct Proc {
    child: Option<Child>,
    log: PathBuf,
    pub args: Vec<String>,
}

impl Proc {
    pub fn spawn(args: &[String]) -> Proc {
        Proc::spawn_in(None, args)
    }

    /// Starts the bridge in network namespace `netns` (`ip netns exec`, which execs it:
    /// the pid is the bridge's), or in ours.
    pub fn spawn_in(netns: Option<&str>, args: &[String]) -> Proc {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        let log = dir.join(format!("{}.log", unique("bridge")));
        let mut cmd = match netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, BIN]);
                c
            }
            None => Command::new(BIN),
        };
        let child = cmd
            .args(args)
            .env(
                "RUST_LOG",
                std::env::var("TEST_BRIDGE_LOG").unwrap_or("warn,ringcast_bridge=info".into()),
            )
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&log).expect("log file"))
            .spawn()
            .expect("spawning ringcast-bridge");
        Proc {
            child: Some(child),
            log,
            args: args.to_vec(),
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().expect("running").id() as i32
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGINT, then waits (bounded) for the exit.
    pub fn interrupt(&mut self) -> ExitStatus {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.pid(), libc::SIGINT) };
        self.wait_exit()
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.child = None;
    }

    /// Waits (bounded) for the process to end by itself.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let c = self.child.as_mut().expect("running");
        let t = Instant::now();
        loop {
            if let Some(s) = c.try_wait().expect("try_wait") {
                self.child = None;
                return s;
            }
            assert!(t.elapsed() < WAIT, "bridge did not exit:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("--- bridge {:?}\n{}", self.args, self.log());
        }
        let _ = std::fs::remove_file(&self.log);
    }
}

/// Two hosts (prefixes) in one private domain, and the TCP endpoint host A listens on.
pub struct Pair {
    pub a: String,
    pub b: String,
    pub domain: String,
    pub endpoint: String,
    topics: Vec<String>,
}

impl Pair {
    pub fn new(tag: &str) -> Pair {
        Pair {
            a: unique(&format!("{tag}a")),
            b: unique(&format!("{tag}b")),
            domain: unique("d"),
            endpoint: format!("tcp/127.0.0.1:{}", free_port()),
            topics: Vec::new(),
        }
    }

    /// Registers topics to remove from both prefixes at the end.
    pub fn topics(&mut self, t: &[&str]) {
        self.topics.extend(t.iter().map(|s| s.to_string()));
    }

    fn args(&self, prefix: &str, extra: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = ["--prefix", prefix, "--domain", &self.domain]
            .iter()
            .map(|s| s.to_string())
            .collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    }

    /// Host A's bridge: listens; `roles` like `["--export", "t"]`. Returns once its port
    /// listens (bounded): a bridge started before that could take the port as its own
    /// random listening port (every Zenoh peer has one) and then dial itself.
    pub fn bridge_a(&self, roles: &[&str]) -> Proc {
        let mut extra = vec!["--listen", self.endpoint.as_str()];
        extra.extend_from_slice(roles);
        let p = Proc::spawn(&self.args(&self.a, &extra));
        let port = self.port_a();
        let t = Instant::now();
        while listening(port) == Some(false) && t.elapsed() < LISTEN_WAIT {
            std::thread::sleep(Duration::from_millis(5));
        }
        p
    }

    /// Host B's bridge: connects to A.
    pub fn bridge_b(&self, roles: &[&str]) -> Proc {
        self.bridge_b_via(&self.endpoint, roles)
    }

    /// Host B's bridge, connecting to `endpoint` (a proxy in front of A).
    pub fn bridge_b_via(&self, endpoint: &str, roles: &[&str]) -> Proc {
        let mut extra = vec!["--connect", endpoint];
        extra.extend_from_slice(roles);
        Proc::spawn(&self.args(&self.b, &extra))
    }

    /// The TCP port host A listens on.
    pub fn port_a(&self) -> u16 {
        self.endpoint
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("a port in the endpoint")
    }

    /// Segments left under either prefix.
    pub fn leftovers(&self) -> Vec<String> {
        let mut v = ringcast::name::list_topics(&self.a).unwrap();
        v.extend(ringcast::name::list_topics(&self.b).unwrap());
        v
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        for t in &self.topics {
            let _ = ringcast::inspect::remove(&self.a, t);
            let _ = ringcast::inspect::remove(&self.b, t);
        }
    }
}

/// Attaches to `topic` under `prefix` once it exists (an import appears when the remote
/// announcement arrives).
pub fn attach(prefix: &str, topic: &str) -> Subscriber {
    Subscriber::attach_wait(topic, SubscriberOptions::default().prefix(prefix), WAIT)
        .unwrap_or_else(|e| panic!("attaching {prefix}.{topic}: {e}"))
}

/// A `Block` source of 64 slots of 64 bytes under `prefix`.
pub fn block_source(prefix: &str, topic: &str) -> Publisher {
    Publisher::create(
        topic,
        PublisherConfig::default()
            .prefix(prefix)
            .overflow(Overflow::Block)
            .slots(64)
            .slot_size(64),
    )
    .expect("source topic")
}

/// Byte `j` of message `i`.
pub fn pattern(i: u64, j: usize) -> u8 {
    (i.wrapping_mul(31) ^ (j as u64).wrapping_mul(7) ^ (i >> 8)) as u8
}

/// Message `i`'s length when lengths cycle through 0..=cap.
pub fn len_of(i: u64, cap: usize) -> usize {
    (i % (cap as u64 + 1)) as usize
}

/// Waits until `cond` holds (bounded), panicking with `what`.
pub fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let t = Instant::now();
    while !cond() {
        assert!(t.elapsed() < WAIT, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A Zenoh peer of the test's own, connected to a bridge over plain TCP: it can say
/// anything.
pub fn hostile_peer(endpoint: &str) -> zenoh::Session {
    use zenoh::Wait;
    let mut c = zenoh::Config::default();
    c.insert_json5("mode", "\"peer\"").unwrap();
    c.insert_json5("connect/endpoints", &format!("[\"{endpoint}\"]"))
        .unwrap();
    c.insert_json5("scouting/multicast/enabled", "false")
        .unwrap();
    zenoh::open(c).wait().expect("test session")
}

/// A bridge's Zenoh id, from its "bridge running" log line.
pub fn zid_of(p: &Proc) -> String {
    let mut zid = None;
    eventually("the bridge's zid in its log", || {
        zid = p.log().lines().find_map(|l| {
            l.split("zid=").nth(1).map(|r| {
                let z = r.split_whitespace().next().unwrap_or("");
                z.trim_matches('"').to_owned()
            })
        });
        zid.is_some()
    });
    zid.expect("checked above")
}

/// Waits until `session` has a direct link to the bridge with id `zid`, and a moment more
/// for the bridge's subscriptions to reach it (so what it puts is routed to the bridge).
pub fn linked_to(session: &zenoh::Session, zid: &str) {
    use zenoh::Wait;
    eventually("the test peer links to the bridge", || {
        session
            .info()
            .peers_zid()
            .wait()
            .any(|z| z.to_string() == zid)
    });
    std::thread::sleep(Duration::from_millis(500));
}

/// Stops a bridge process (SIGSTOP) and waits until every one of its threads is stopped,
/// so that nothing it does can overlap what the test does next.
pub fn freeze(p: &Proc) {
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(p.pid(), libc::SIGSTOP) }, 0);
    eventually("every thread of the bridge to stop", || {
        let tasks = std::fs::read_dir(format!("/proc/{}/task", p.pid())).expect("its tasks");
        tasks.flatten().all(|t| {
            let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
            // The state follows the parenthesised command name.
            let state = stat
                .rsplit(')')
                .next()
                .and_then(|r| r.split_whitespace().next());
            matches!(state, Some("T" | "t") | None)
        })
    });
}

/// Lets a frozen bridge go on (SIGCONT).
pub fn thaw(p: &Proc) {
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(p.pid(), libc::SIGCONT) }, 0);
}

/// Stops both bridges (SIGINT), checks they exit cleanly, and returns their logs.
pub fn stop_both(a: &mut Proc, b: &mut Proc) -> (String, String) {
    for p in [&mut *a, &mut *b] {
        let status = p.interrupt();
        assert!(status.success(), "{status:?}\n{}", p.log());
    }
    (a.log(), b.log())
}

/// A topic's counts as a bridge prints them when it stops.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub messages: u64,
    pub bytes: u64,
    pub lost: u64,
    pub refused: u64,
    pub puts: u64,
}

/// The counts of `direction` (`Export` or `Import`) `topic` in a stopped bridge's log.
pub fn counts(log: &str, direction: &str, topic: &str) -> Counts {
    let head = format!("ringcast-bridge: {direction} {topic}: ");
    let line = log
        .lines()
        .find_map(|l| l.strip_prefix(head.as_str()))
        .unwrap_or_else(|| panic!("no {head:?} in\n{log}"));
    let mut c = Counts::default();
    let mut found = 0;
    for part in line.split(", ") {
        found += 1;
        let (n, what) = part.split_once(' ').expect("N what");
        let n: u64 = n.parse().expect("a count");
        match what {
            "messages" => c.messages = n,
            "bytes" => c.bytes = n,
            "lost" => c.lost = n,
            "refused" => c.refused = n,
            "puts" => c.puts = n,
            other => panic!("unknown count {other:?} in {line:?}"),
        }
    }
    assert_eq!(found, 5, "not every count in {line:?}");
    c
}
