//! Memory residency at its edges. `attach_wait` with prefault or `lock_memory` faults in
//! only the segment it finally attaches to, never a dead publisher's segment it retries
//! past (counted in this thread's minor page faults: a prefault of the 64 MiB ring faults
//! thousands of times, retrying past it must not).

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
    // SAFETY: getrusage with a valid out-pointer.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    assert_eq!(
        unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) },
        0
    );
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
