//! Prefaulting and locking a segment: resident size after creation (publisher) and after
//! attach (a subscriber process) with and without prefault, locked size with
//! `lock_memory`, and a typed error when the lock is over the process's limit.

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
