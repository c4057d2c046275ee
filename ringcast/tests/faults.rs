//! Cleanup and robustness promises under faults, with real processes:
//!
//! - publishers killed at random instants inside `create` (and one by SIGXFSZ) leave
//!   nothing in /dev/shm that `gc` cannot remove, and a fresh create works;
//! - `gc` racing publishers that reclaim dead topics never removes a live topic;
//! - a FIFO, a directory, a socket and a symlink named like segments: attach, inspect,
//!   `gc` and create return promptly with a clear result (and `gc` leaves them alone);
//! - attaching under RLIMIT_AS, and to a hostile header over a sparse file, is a typed
//!   error (or the subscriber's own limit), never an abort.

mod common;

use std::fs;
use std::mem::offset_of;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::time::Duration;

use common::*;
use ringcast::inspect::{self, GcOutcome};
use ringcast::*;
use ringcast_core::layout::Identity;

const CHILD: &str = "faults_child_entry";
const LONG: Duration = Duration::from_secs(30);

#[test]
#[ignore = "entry point for child processes spawned by the other tests"]
fn faults_child_entry() {
    match std::env::var(ROLE).as_deref() {
        Ok("create") => create_child(),
        Ok("many") => many_topics_child(),
        Ok("rlimit") => rlimit_child(),
        _ => {}
    }
}

fn shm_file(prefix: &str, topic: &str) -> PathBuf {
    PathBuf::from(format!("/dev/shm/{prefix}.{topic}"))
}

/// Every file in /dev/shm whose name starts with `prefix` and a dot.
fn files_under(prefix: &str) -> Vec<String> {
    let lead = format!("{prefix}.");
    fs::read_dir("/dev/shm")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with(&lead))
        .collect()
}

/// Removes every file under `prefix` when dropped.
struct PrefixGuard(String);

impl Drop for PrefixGuard {
    fn drop(&mut self) {
        for f in files_under(&self.0) {
            let p = PathBuf::from("/dev/shm").join(&f);
            let _ = fs::remove_file(&p).or_else(|_| fs::remove_dir(&p));
        }
    }
}

/// A small pseudo-random generator (xorshift), seeded per process.
struct Rng(u64);

impl Rng {
    fn new() -> Rng {
        Rng(0x9e37_79b9_7f4a_7c15 ^ u64::from(std::process::id()))
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

// ---- creation temporaries ----

/// Creates a 16 MiB topic (with RLIMIT_FSIZE set first if FSIZE is given), says so, idles.
fn create_child() {
    let (prefix, topic): (String, String) = (env("PREFIX"), env("TOPIC"));
    if let Ok(limit) = std::env::var("FSIZE") {
        let limit: u64 = limit.parse().unwrap();
        let lim = libc::rlimit {
            rlim_cur: limit,
            rlim_max: limit,
        };
        // SAFETY: a valid rlimit struct for the call.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_FSIZE, &lim) }, 0);
    }
    let cfg = PublisherConfig::default()
        .prefix(&prefix)
        .slots(256)
        .slot_size(64 * 1024);
    let _p = Publisher::create(&topic, cfg).expect("create");
    println!("CREATED");
    std::thread::sleep(Duration::from_secs(600));
}

#[test]
fn creators_killed_at_any_instant_leave_nothing_that_gc_cannot_remove() {
    let prefix = prefix("crkill");
    let _guard = PrefixGuard(prefix.clone());
    let mut rng = Rng::new();
    let mut created = 0;
    for i in 0..200 {
        let topic = format!("t{}", i % 7);
        let mut child = spawn(
            CHILD,
            "create",
            &[("PREFIX", prefix.clone()), ("TOPIC", topic)],
        );
        std::thread::sleep(Duration::from_micros(rng.below(15_000)));
        let _ = child.kill();
        let out = child.wait_with_output().expect("reap child");
        if String::from_utf8_lossy(&out.stdout).contains("CREATED") {
            created += 1;
        }
    }
    // One more, killed by the kernel for exceeding its file-size limit while reserving.
    let mut child = spawn(
        CHILD,
        "create",
        &[
            ("PREFIX", prefix.clone()),
            ("TOPIC", "xfsz".to_owned()),
            ("FSIZE", (1u64 << 20).to_string()),
        ],
    );
    let status = child.wait().expect("reap child");
    assert!(
        !status.success(),
        "a 16 MiB topic under a 1 MiB RLIMIT_FSIZE"
    );
    inspect::gc(&prefix).expect("gc");
    let left = files_under(&prefix);
    assert!(
        left.is_empty(),
        "after gc, left in /dev/shm: {left:?} ({created} of 200 creates had finished)"
    );
    let p = Publisher::create("t0", PublisherConfig::default().prefix(&prefix));
    assert!(p.is_ok(), "a fresh create after the kills: {:?}", p.err());
}

// ---- gc racing reclaim ----

/// Creates COUNT small topics, says so, idles until killed.
fn many_topics_child() {
    let (prefix, count): (String, usize) = (env("PREFIX"), env("COUNT"));
    let cfg = PublisherConfig::default()
        .prefix(&prefix)
        .slots(2)
        .slot_size(8);
    let publishers: Vec<_> = (0..count)
        .map(|i| Publisher::create(&format!("t{i}"), cfg.clone()).expect("create"))
        .collect();
    println!("CREATED");
    std::thread::sleep(Duration::from_secs(600));
    drop(publishers);
}

#[test]
fn gc_racing_reclaim_never_removes_a_live_topic() {
    const COUNT: usize = 300;
    let prefix = prefix("gcrace");
    let _guard = PrefixGuard(prefix.clone());
    let child = spawn_talking(
        CHILD,
        "many",
        &[("PREFIX", prefix.clone()), ("COUNT", COUNT.to_string())],
    );
    child.expect("CREATED", LONG);
    child.kill();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let gc_thread = {
        let (prefix, stop) = (prefix.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut passes = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                inspect::gc(&prefix).expect("gc");
                passes += 1;
            }
            passes
        })
    };
    let cfg = PublisherConfig::default()
        .prefix(&prefix)
        .slots(2)
        .slot_size(8);
    let mut live = Vec::new();
    for i in 0..COUNT {
        let topic = format!("t{i}");
        match Publisher::create(&topic, cfg.clone()) {
            Ok(p) => live.push(p),
            Err(e) => panic!("reclaiming {topic}: {e}"),
        }
    }
    // Let gc run over the live topics too.
    std::thread::sleep(Duration::from_millis(100));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let passes = gc_thread.join().unwrap();
    for p in &live {
        let info = inspect::inspect(&prefix, p.topic())
            .unwrap_or_else(|e| panic!("live topic {} lost its name: {e}", p.topic()));
        assert!(info.publisher_alive, "{} names a dead segment", p.topic());
    }
    assert!(passes > 0);
}

// ---- things that are not regular files ----

/// Runs `f` on a thread and fails if it does not return within two seconds.
fn promptly<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(2))
        .unwrap_or_else(|_| panic!("{what} did not return within 2 s"))
}

#[test]
fn fifos_directories_sockets_and_symlinks_named_like_segments_are_refused_promptly() {
    let prefix = prefix("odd");
    let _guard = PrefixGuard(prefix.clone());
    // A real segment for the symlink to point at: it must not be followed.
    let _real = Publisher::create("real", PublisherConfig::default().prefix(&prefix)).unwrap();
    let fifo = shm_file(&prefix, "fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    fs::create_dir(shm_file(&prefix, "dir")).unwrap();
    let _socket = std::os::unix::net::UnixListener::bind(shm_file(&prefix, "sock")).unwrap();
    std::os::unix::fs::symlink(shm_file(&prefix, "real"), shm_file(&prefix, "link")).unwrap();

    for (topic, kind) in [
        ("fifo", "FIFO"),
        ("dir", "directory"),
        ("sock", "socket"),
        ("link", "symbolic link"),
    ] {
        let p = prefix.clone();
        let attached = promptly(topic, move || {
            Subscriber::attach(topic, SubscriberOptions::default().prefix(&p)).err()
        });
        match attached {
            Some(AttachError::NotRegularFile { kind: k, .. }) => {
                assert!(k.contains(kind) || kind.contains(k), "{topic}: {k}")
            }
            e => panic!("attach to a {kind}: {e:?}"),
        }
        let p = prefix.clone();
        let inspected = promptly(topic, move || inspect::inspect(&p, topic).err());
        assert!(
            matches!(inspected, Some(AttachError::NotRegularFile { .. })),
            "inspect of a {kind}: {inspected:?}"
        );
        let p = prefix.clone();
        let created = promptly(topic, move || {
            Publisher::create(topic, PublisherConfig::default().prefix(&p)).err()
        });
        assert!(
            matches!(created, Some(CreateError::NotASegment { .. })),
            "create over a {kind}: {created:?}"
        );
    }
    let p = prefix.clone();
    let outcomes = promptly("gc", move || inspect::gc(&p).unwrap());
    for (topic, outcome) in outcomes {
        match topic.as_str() {
            "real" => assert!(matches!(outcome, GcOutcome::Alive), "{outcome:?}"),
            _ => assert!(
                matches!(outcome, GcOutcome::Skipped(_)),
                "{topic}: {outcome:?}"
            ),
        }
    }
    for odd in ["fifo", "dir", "sock", "link"] {
        assert!(
            fs::symlink_metadata(shm_file(&prefix, odd)).is_ok(),
            "gc removed the {odd}"
        );
    }
    let p = prefix.clone();
    let listed = promptly("list", move || ringcast::name::list_topics(&p).unwrap());
    assert_eq!(listed.len(), 5, "{listed:?}");
}

// ---- memory limits and hostile sizes ----

/// Under RLIMIT_AS (the mapping fits, the copy buffer does not), attaches to the raw
/// Overwrite topic TOPIC, then to the hostile sparse HOSTILE, and reports what happened.
fn rlimit_child() {
    let (prefix, topic, hostile): (String, String, String) =
        (env("PREFIX"), env("TOPIC"), env("HOSTILE"));
    let status = fs::read_to_string("/proc/self/status").unwrap();
    let vm_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmSize:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    // Room for the 128 MiB mapping and some slack, not for the 64 MiB copy buffer too.
    let limit = vm_kib * 1024 + (128 << 20) + (40 << 20);
    let lim = libc::rlimit {
        rlim_cur: limit,
        rlim_max: limit,
    };
    // SAFETY: a valid rlimit struct for the call.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &lim) }, 0);
    let opts = SubscriberOptions::default().prefix(&prefix);
    let big = match Subscriber::attach(&topic, opts.clone()) {
        Ok(_) => "attached".to_owned(),
        Err(AttachError::OutOfMemory { bytes, .. }) => format!("oom:{bytes}"),
        Err(e) => format!("other:{e}"),
    };
    let sparse = match Subscriber::attach(&hostile, opts) {
        Ok(_) => "attached".to_owned(),
        Err(AttachError::OutOfMemory { .. }) => "oom".to_owned(),
        Err(AttachError::Io { op, .. }) => format!("io:{op}"),
        Err(e) => format!("other:{e}"),
    };
    println!("RESULT big={big} sparse={sparse}");
}

/// Writes, as `hostile`, the header of the real topic `model` rewritten to claim 512
/// slots of 1 GiB, over a sparse file of the claimed size.
fn forge_sparse_giant(prefix: &str, model: &str, hostile: &str) {
    let bytes = fs::read(shm_file(prefix, model)).unwrap();
    let word = |off: usize| u64::from_ne_bytes(bytes[off..off + 8].try_into().unwrap());
    let header_size = word(offset_of!(Identity, header_size));
    let alignment = word(offset_of!(Identity, alignment));
    let payload_offset = word(offset_of!(Identity, payload_offset));
    let (slots, capacity) = (512u64, 1u64 << 30);
    let stride = (payload_offset + capacity).next_multiple_of(128.max(alignment));
    let total = header_size + slots * stride;
    let mut header = bytes[..header_size as usize].to_vec();
    for (off, v) in [
        (offset_of!(Identity, total_size), total),
        (offset_of!(Identity, slot_count), slots),
        (offset_of!(Identity, slot_capacity), capacity),
        (offset_of!(Identity, slot_stride), stride),
    ] {
        header[off..off + 8].copy_from_slice(&v.to_ne_bytes());
    }
    let f = fs::File::create(shm_file(prefix, hostile)).unwrap();
    f.write_all_at(&header, 0).unwrap();
    f.set_len(total).unwrap();
}

#[test]
fn attach_under_rlimit_as_and_to_a_hostile_sparse_header_is_a_typed_error() {
    let prefix = prefix("mem");
    let _guard = PrefixGuard(prefix.clone());
    let overwrite = PublisherConfig::default()
        .prefix(&prefix)
        .overflow(Overflow::Overwrite);
    let _big = Publisher::create("big", overwrite.clone().slots(2).slot_size(64 << 20))
        .expect("a 128 MiB topic");
    let model = Publisher::create("model", overwrite.clone().slots(2).slot_size(64)).unwrap();
    forge_sparse_giant(&prefix, "model", "giant");

    // The subscriber's own limits refuse the giant before mapping anything.
    let opts = SubscriberOptions::default().prefix(&prefix);
    match Subscriber::attach("giant", opts.clone().max_segment_size(1 << 30)) {
        Err(AttachError::OverLimit {
            what: "segment size",
            ..
        }) => {}
        r => panic!("max_segment_size: {:?}", r.err()),
    }
    match Subscriber::attach("giant", opts.clone().max_slot_size(1 << 20)) {
        Err(AttachError::OverLimit {
            what: "slot size",
            size,
            ..
        }) => assert_eq!(size, 1 << 30),
        r => panic!("max_slot_size: {:?}", r.err()),
    }
    drop(model);

    // Under RLIMIT_AS: typed errors, no abort.
    let child = spawn_talking(
        CHILD,
        "rlimit",
        &[
            ("PREFIX", prefix.clone()),
            ("TOPIC", "big".to_owned()),
            ("HOSTILE", "giant".to_owned()),
        ],
    );
    let (code, result) = child.finish(LONG);
    let result = result.unwrap_or_else(|| panic!("the child died (exit {code:?})"));
    assert_eq!(code, Some(0), "{result}");
    assert!(
        result.contains(&format!("big=oom:{}", 64u64 << 20)),
        "64 MiB copy buffer under RLIMIT_AS: {result}"
    );
    assert!(
        result.contains("sparse=io:mmap") || result.contains("sparse=oom"),
        "512 GiB sparse giant under RLIMIT_AS: {result}"
    );
}
