//! Memory residency at its edges. `attach_wait` with prefault or `lock_memory` faults in
//! only the segment it finally attaches to, never a dead publisher's segment it retries
//! past (counted in this thread's minor page faults: a prefault of the 64 MiB ring faults
//! thousands of times, retrying past it must not). Huge pages on a kernel without
//! `MADV_POPULATE_WRITE` (simulated by the `RINGCAST_TEST_NO_MADV_POPULATE` switch, which
//! makes the real fallback path run) are refused at creation with a typed error: reserving
//! them by touching each page would be a SIGBUS where the tmpfs runs out (here: a private
//! 32 MiB `huge=advise` tmpfs under a 64 MiB ring).

mod common;

use std::time::Duration;

use common::*;
use ringcast::*;

const CHILD: &str = "residency_edges_child_entry";
const SLOTS: u64 = 1024;
const SLOT: u64 = 64 * 1024; // a 64 MiB ring

fn config(prefix: &str) -> PublisherConfig {
    PublisherConfig::default()
        .prefix(prefix)
        .slots(SLOTS)
        .slot_size(SLOT)
        .overflow(Overflow::Block)
}

#[test]
#[ignore = "entry point for child processes spawned by the other tests"]
fn residency_edges_child_entry() {
    if std::env::var(ROLE).as_deref() == Ok("dead-publisher") {
        // Creates the topic and dies without closing it: the segment stays, its publisher
        // is gone.
        let (prefix, topic): (String, String) = (env("PREFIX"), env("TOPIC"));
        let p = Publisher::create(&topic, config(&prefix)).expect("create");
        std::mem::forget(p);
        std::process::exit(0);
    }
}

/// Minor page faults taken by this thread so far (a prefault's faults count here too).
fn thread_faults() -> i64 {
    // SAFETY: `rusage` is plain integers, for which all zeroes is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage with a valid out-pointer.
    let r = unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) };
    assert_eq!(r, 0);
    usage.ru_minflt
}

/// Faults this thread takes running `f`.
fn faults_of<T>(f: impl FnOnce() -> T) -> (i64, T) {
    let before = thread_faults();
    let r = f();
    (thread_faults() - before, r)
}

#[test]
fn attach_wait_never_prefaults_or_locks_a_dead_segment_it_retries_past() {
    let n = Names::new("resedge", "dead");
    let mut child = spawn(
        CHILD,
        "dead-publisher",
        &[("PREFIX", n.prefix.clone()), ("TOPIC", n.topic.clone())],
    );
    assert!(
        child.wait().unwrap().success(),
        "the dead publisher's child failed"
    );
    let opts = || SubscriberOptions::default().prefix(&n.prefix);

    // One prefaulted attach to the dead segment: what a single prefault costs.
    let (one, sub) = faults_of(|| Subscriber::attach(&n.topic, opts().prefault(true)));
    drop(sub.expect("attach to the dead segment"));
    assert!(
        one >= 256,
        "one prefault of a 64 MiB ring took only {one} faults"
    );

    // Retrying past it for a while (dozens of attempts): no prefault at all.
    for (what, o) in [
        ("prefault", opts().prefault(true)),
        ("lock_memory", opts().lock_memory(true)),
    ] {
        let (faults, r) =
            faults_of(|| Subscriber::attach_wait(&n.topic, o, Duration::from_millis(300)));
        assert!(
            matches!(r, Err(AttachError::Closed { .. })),
            "{what}: {:?}",
            r.map(|_| ())
        );
        eprintln!("{what}: {faults} faults retrying (one prefault: {one})");
        assert!(
            faults < one / 2,
            "{what}: attach_wait took {faults} faults retrying past a dead segment (one prefault: {one})"
        );
    }

    // The segment it finally attaches to is prefaulted.
    let live = Names::new("resedge", "live");
    let _p = Publisher::create(&live.topic, config(&live.prefix)).unwrap();
    let (faults, sub) = faults_of(|| {
        Subscriber::attach_wait(
            &live.topic,
            SubscriberOptions::default()
                .prefix(&live.prefix)
                .prefault(true),
            Duration::from_secs(10),
        )
    });
    sub.expect("attach to the live topic");
    assert!(
        faults >= one / 2,
        "attach_wait did not prefault the live segment: {faults} faults (one prefault: {one})"
    );
}

/// Runs test `child` (an ignored test of this binary) in a private mount namespace whose
/// /dev/shm is a fresh tmpfs mounted with `options`, with `env` set. Returns false, saying
/// why, where that cannot be set up (not root, no `unshare`, or a system setting that
/// overrides every mount's `huge=`).
fn in_private_shm(options: &str, child: &str, env: &[(&str, &str)]) -> bool {
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
        "mount -t tmpfs -o {options} ringcast-test /dev/shm && exec \"$0\" --exact \"$1\" --ignored --nocapture"
    );
    let out = std::process::Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .arg(std::env::current_exe().unwrap())
        .arg(child)
        .envs(env.iter().copied())
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
    assert!(
        out.status.success(),
        "{child} failed ({:?}):\n{text}",
        out.status
    );
    assert!(text.contains("1 passed"), "{child} did not run:\n{text}");
    true
}

#[test]
fn huge_pages_without_madv_populate_are_refused_at_create_never_a_sigbus() {
    in_private_shm(
        "size=32m,huge=advise",
        "huge_pages_child_without_populate",
        &[(ringcast_core::residency::NO_POPULATE_ENV, "1")],
    );
}

#[test]
#[ignore = "run in a private mount namespace by huge_pages_without_madv_populate_..."]
fn huge_pages_child_without_populate() {
    let n = Names::new("resedge", "huge");
    // A 64 MiB ring on a 32 MiB tmpfs: touching it page by page would SIGBUS halfway.
    match Publisher::create(&n.topic, config(&n.prefix).huge_pages(true)) {
        Err(e @ CreateError::HugePagesUnavailable { .. }) => {
            let text = e.to_string();
            assert!(text.contains("MADV_POPULATE_WRITE"), "{text}");
        }
        Err(e) => panic!("expected HugePagesUnavailable, got {e:?}"),
        Ok(_) => panic!("huge pages granted without MADV_POPULATE_WRITE"),
    }
    assert!(
        std::fs::read_dir("/dev/shm").unwrap().next().is_none(),
        "the refused topic left a file behind"
    );
    // A prefault without huge pages still takes the fallback (touching each page).
    let small = Names::new("resedge", "small");
    let mut p = Publisher::create(
        &small.topic,
        PublisherConfig::default()
            .prefix(&small.prefix)
            .slots(8)
            .slot_size(4096)
            .prefault(true),
    )
    .unwrap();
    let mut s = Subscriber::attach(
        &small.topic,
        SubscriberOptions::default()
            .prefix(&small.prefix)
            .prefault(true),
    )
    .unwrap();
    p.send(b"touched").unwrap();
    assert_eq!(&*s.try_recv().unwrap(), b"touched");
}
