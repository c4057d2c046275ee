//! Prefaulting and locking a segment: resident size after creation (publisher) and after
//! attach (a subscriber process) with and without prefault, locked size with
//! `lock_memory`, and a typed error when the lock is over the process's limit. Huge pages:
//! in a private mount namespace (root, `unshare`) whose /dev/shm is a fresh tmpfs mounted
//! `huge=advise`, the segment and a subscriber's mapping of it are PMD-mapped with the
//! option and not without it; mounted
//! `huge=never`, asking for them is a typed error that says what to change.

mod common;

use common::*;
use ringcast::*;

const CHILD: &str = "residency_child_entry";
const SLOTS: u64 = 256;
const SLOT: u64 = 64 * 1024; // a 16 MiB ring

/// A kB figure (`Rss`, `Locked`) of this process's mappings of the topic's segment, from
/// /proc/self/smaps. The mapping was made before the file got its name, so it is found by
/// the file's inode, not its path.
fn smaps_kb(prefix: &str, topic: &str, field: &str) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let ino = std::fs::metadata(format!("/dev/shm/{prefix}.{topic}"))
        .unwrap()
        .ino()
        .to_string();
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
    let (mut in_it, mut total) = (false, 0);
    for line in smaps.lines() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols
            .first()
            .is_some_and(|c| c.contains('-') && !c.ends_with(':'))
            && cols.len() >= 5
        {
            in_it = cols[4] == ino;
        } else if in_it {
            if let Some(v) = line.strip_prefix(&format!("{field}:")) {
                total += v
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .unwrap();
            }
        }
    }
    total
}

fn config(prefix: &str) -> PublisherConfig {
    PublisherConfig::default()
        .prefix(prefix)
        .slots(SLOTS)
        .slot_size(SLOT)
        .overflow(Overflow::Block)
}

#[test]
#[ignore = "entry point for child processes spawned by the other tests"]
fn residency_child_entry() {
    if std::env::var(ROLE).as_deref() == Ok("subscriber") {
        let (prefix, topic, prefault): (String, String, u8) =
            (env("PREFIX"), env("TOPIC"), env("PREFAULT"));
        let opts = SubscriberOptions::default()
            .prefix(&prefix)
            .prefault(prefault == 1);
        let _sub = Subscriber::attach(&topic, opts).expect("attach");
        println!("RESULT rss={}", smaps_kb(&prefix, &topic, "Rss"));
        return;
    }
    if std::env::var(ROLE).as_deref() != Ok("over-limit") {
        return;
    }
    // No CAP_IPC_LOCK (a root test run has it: drop it from the effective set) and a
    // 64 KiB lock limit: locking a 16 MiB segment must fail, with a typed error.
    drop_ipc_lock();
    let limit = libc::rlimit {
        rlim_cur: 64 * 1024,
        rlim_max: 64 * 1024,
    };
    // SAFETY: a plain setrlimit on this (child) process.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &limit) }, 0);
    let (prefix, topic): (String, String) = (env("PREFIX"), env("TOPIC"));
    match Publisher::create(&topic, config(&prefix).lock_memory(true)) {
        Err(e @ CreateError::Memory { .. }) => {
            assert!(e.to_string().contains("RLIMIT_MEMLOCK"), "{e}");
            println!("RESULT refused=1");
        }
        Ok(_) => println!("RESULT refused=0"),
        Err(e) => panic!("{e}"),
    }
}

/// Clears the effective capability set of this thread (so CAP_IPC_LOCK is gone).
fn drop_ipc_lock() {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let mut header = Header {
        version: 0x2008_0522, // _LINUX_CAPABILITY_VERSION_3
        pid: 0,
    };
    let mut data = [Data::default(); 2];
    // SAFETY: capget/capset with a v3 header and two data words, as the kernel expects.
    unsafe {
        assert_eq!(
            libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()),
            0
        );
        for d in &mut data {
            d.effective = 0;
        }
        assert_eq!(
            libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()),
            0
        );
    }
}

#[test]
fn prefault_makes_the_whole_segment_resident_at_creation() {
    let plain = Names::new("res", "plain");
    let p = Publisher::create(&plain.topic, config(&plain.prefix)).unwrap();
    let cold = smaps_kb(&plain.prefix, &plain.topic, "Rss");
    let warm = Names::new("res", "warm");
    let q = Publisher::create(&warm.topic, config(&warm.prefix).prefault(true)).unwrap();
    let hot = smaps_kb(&warm.prefix, &warm.topic, "Rss");
    let ring_kb = SLOTS * SLOT / 1024;
    assert!(
        hot >= ring_kb,
        "prefaulted: {hot} kB resident of a {ring_kb} kB ring"
    );
    assert!(
        cold < ring_kb / 8,
        "not prefaulted: {cold} kB resident already"
    );
    drop((p, q));
}

#[test]
fn lock_memory_locks_the_segment_and_over_the_limit_is_a_typed_error() {
    let n = Names::new("res", "locked");
    let p = Publisher::create(&n.topic, config(&n.prefix).lock_memory(true)).unwrap();
    let locked = smaps_kb(&n.prefix, &n.topic, "Locked");
    assert!(locked >= SLOTS * SLOT / 1024, "{locked} kB locked");
    drop(p);

    let m = Names::new("res", "over");
    let child = spawn(
        CHILD,
        "over-limit",
        &[("PREFIX", m.prefix.clone()), ("TOPIC", m.topic.clone())],
    );
    let (code, result) = finish(child, std::time::Duration::from_secs(30));
    assert_eq!(code, Some(0));
    assert_eq!(field(&result.expect("RESULT"), "refused"), 1);
}

#[test]
fn a_subscriber_that_prefaults_has_the_whole_segment_resident_after_attach() {
    let n = Names::new("res", "sub");
    let _p = Publisher::create(&n.topic, config(&n.prefix)).unwrap();
    let rss = |prefault: u8| {
        let child = spawn(
            CHILD,
            "subscriber",
            &[
                ("PREFIX", n.prefix.clone()),
                ("TOPIC", n.topic.clone()),
                ("PREFAULT", prefault.to_string()),
            ],
        );
        let (code, result) = finish(child, std::time::Duration::from_secs(30));
        assert_eq!(code, Some(0));
        field(&result.expect("RESULT"), "rss")
    };
    let ring_kb = SLOTS * SLOT / 1024;
    let (cold, hot) = (rss(0), rss(1));
    assert!(
        hot >= ring_kb,
        "prefaulted: {hot} kB resident of a {ring_kb} kB ring"
    );
    assert!(
        cold < ring_kb / 8,
        "not prefaulted: {cold} kB resident already"
    );
}

/// Runs test `child` (an ignored test of this binary) in a private mount namespace whose
/// /dev/shm is a fresh 256 MiB tmpfs mounted with `huge` (e.g. `huge=always`). Returns
/// false, saying why, where that cannot be set up (not root, no `unshare`, or a system
/// setting that overrides every mount's choice).
fn in_private_shm(huge: &str, child: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root for a private mount namespace");
        return false;
    }
    let system = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/shmem_enabled")
        .unwrap_or_default();
    if system.is_empty() || system.contains("[deny]") || system.contains("[force]") {
        eprintln!("skipped: shmem_enabled is {system:?}: the mount's huge= does not decide");
        return false;
    }
    let script = format!(
        "mount -t tmpfs -o size=256m,{huge} ringcast-test /dev/shm && exec \"$0\" --exact \"$1\" --ignored --nocapture"
    );
    let out = std::process::Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .arg(std::env::current_exe().unwrap())
        .arg(child)
        .output();
    let out = match out {
        Ok(out) => out,
        Err(e) => {
            eprintln!("skipped: cannot run unshare: {e}");
            return false;
        }
    };
    let text = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
    if !out.status.success() && text.contains("unshare failed") {
        eprintln!("skipped: no mount namespace here: {text}");
        return false;
    }
    assert!(out.status.success(), "{child} failed:\n{text}");
    assert!(text.contains("1 passed"), "{child} did not run:\n{text}");
    true
}

#[test]
fn huge_pages_back_the_segment_and_its_subscribers_where_dev_shm_offers_them() {
    // `advise`: only a mapping that asks gets huge pages, so the option is what decides.
    in_private_shm("huge=advise", "huge_pages_child_offered");
}

#[test]
fn huge_pages_are_refused_with_what_to_change_where_dev_shm_does_not_offer_them() {
    in_private_shm("huge=never", "huge_pages_child_refused");
}

#[test]
#[ignore = "run in a private mount namespace by huge_pages_back_the_segment_..."]
fn huge_pages_child_offered() {
    let plain = Names::new("res", "small");
    let q = Publisher::create(&plain.topic, config(&plain.prefix).prefault(true)).unwrap();
    let small = smaps_kb(&plain.prefix, &plain.topic, "ShmemPmdMapped");
    assert_eq!(small, 0, "huge pages without asking");
    drop(q);
    let n = Names::new("res", "huge");
    let mut p = Publisher::create(&n.topic, config(&n.prefix).huge_pages(true)).unwrap();
    let ring_kb = SLOTS * SLOT / 1024;
    let publisher = smaps_kb(&n.prefix, &n.topic, "ShmemPmdMapped");
    println!("huge: publisher {publisher} kB PMD-mapped");
    assert!(
        publisher >= ring_kb / 2,
        "publisher: {publisher} kB of a {ring_kb} kB ring on huge pages"
    );
    let opts = SubscriberOptions::default()
        .prefix(&n.prefix)
        .prefault(true);
    let mut s = Subscriber::attach(&n.topic, opts).unwrap();
    let both = smaps_kb(&n.prefix, &n.topic, "ShmemPmdMapped");
    assert!(
        both - publisher >= ring_kb / 2,
        "subscriber: {} kB of a {ring_kb} kB ring on huge pages",
        both - publisher
    );
    for i in 0..(2 * SLOTS) {
        p.send(&i.to_le_bytes()).unwrap();
        assert_eq!(*s.try_recv().unwrap(), i.to_le_bytes());
    }
}

#[test]
#[ignore = "run in a private mount namespace by huge_pages_are_refused_..."]
fn huge_pages_child_refused() {
    let n = Names::new("res", "nohuge");
    match Publisher::create(&n.topic, config(&n.prefix).huge_pages(true)) {
        Err(e @ CreateError::HugePagesUnavailable { .. }) => {
            let text = e.to_string();
            assert!(
                text.contains("huge=never") && text.contains("remount"),
                "{text}"
            );
        }
        Err(e) => panic!("expected HugePagesUnavailable, got {e:?}"),
        Ok(_) => panic!("huge pages granted on a huge=never mount"),
    }
    // Nothing was made, and the same topic without huge pages is fine.
    assert!(std::fs::read_dir("/dev/shm").unwrap().next().is_none());
    let p = Publisher::create(&n.topic, config(&n.prefix)).unwrap();
    assert_eq!(smaps_kb(&n.prefix, &n.topic, "ShmemPmdMapped"), 0);
    drop(p);
}
