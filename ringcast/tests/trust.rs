//! Nobody else on the machine can stand in for a topic: a segment created by another
//! local user under a topic's name is refused by subscribers (naming its owner) unless
//! they trust that user, and a publisher that finds the name taken is told whose it is.
//! The other user is `nobody` (uid 65534), which a root test process becomes in a child;
//! elsewhere the tests say why they are skipped.

mod common;

use std::time::Duration;

use common::{env, spawn_talking, Cleanup, ROLE};
use ringcast::{
    AttachError, CreateError, Overflow, Publisher, PublisherConfig, Subscriber, SubscriberOptions,
};

const OTHER: u32 = 65534;

/// Whether this process may become another user (root), else why the tests skip.
fn can_switch_user() -> Result<(), String> {
    if !nix::unistd::geteuid().is_root() {
        return Err("skipped: needs root to run a child as another user".into());
    }
    Ok(())
}

/// In the child: become `nobody`, create the topic (mode 0644 so the parent could read it
/// even without root), publish one message, say READY and stay until killed (60 s at
/// most).
#[test]
#[ignore = "child process of the trust tests"]
fn squatter() {
    if env::<String>(ROLE) != "squat" {
        return;
    }
    let (prefix, topic): (String, String) = (env("PREFIX"), env("TOPIC"));
    nix::unistd::setgid(nix::unistd::Gid::from_raw(OTHER)).expect("setgid");
    nix::unistd::setuid(nix::unistd::Uid::from_raw(OTHER)).expect("setuid");
    let cfg = PublisherConfig::default()
        .prefix(&prefix)
        .slots(4)
        .slot_size(64)
        .overflow(Overflow::Overwrite)
        .mode(0o644);
    let mut p = Publisher::create(&topic, cfg).expect("create as nobody");
    p.send(b"forged").unwrap();
    println!("READY");
    std::thread::sleep(Duration::from_secs(60));
}

fn with_squatter(f: impl FnOnce(&str, &str)) {
    if let Err(why) = can_switch_user() {
        eprintln!("{why}");
        return;
    }
    let prefix = common::prefix("trust");
    let topic = common::topic("squat");
    let _cleanup = Cleanup(prefix.clone(), topic.clone());
    let child = spawn_talking(
        "squatter",
        "squat",
        &[("PREFIX", prefix.clone()), ("TOPIC", topic.clone())],
    );
    child.expect("READY", Duration::from_secs(30));
    f(&prefix, &topic);
    child.kill();
}

#[test]
fn another_users_segment_is_refused_by_default_and_its_owner_named() {
    with_squatter(|prefix, topic| {
        let opts = SubscriberOptions::default()
            .prefix(prefix)
            .start(ringcast::Start::Oldest);
        match Subscriber::attach(topic, opts.clone()) {
            Err(e @ AttachError::UntrustedOwner { .. }) => {
                let text = e.to_string();
                let AttachError::UntrustedOwner { owner, .. } = e else {
                    unreachable!()
                };
                assert_eq!(owner.uid, OTHER);
                assert!(text.contains("uid 65534"), "{text}");
            }
            Err(e) => panic!("expected UntrustedOwner, got {e}"),
            Ok(_) => panic!("attached to another user's segment"),
        }
        // attach_wait does not wait out a squatter either: the refusal is final.
        let waited = Subscriber::attach_wait(topic, opts.clone(), Duration::from_millis(300));
        assert!(matches!(waited, Err(AttachError::UntrustedOwner { .. })));
        // Trusted explicitly (by user, by group, or any owner), it is an ordinary topic.
        for opts in [
            opts.clone().trust_user(OTHER),
            opts.clone().trust_group(OTHER),
            opts.clone().trust_any_owner(),
        ] {
            let mut sub = Subscriber::attach(topic, opts).expect("trusted");
            assert_eq!(&*sub.try_recv().unwrap(), b"forged");
        }
        // A tool's read-only look still sees what holds the name.
        let info = ringcast::inspect::inspect(prefix, topic).expect("inspect any owner");
        assert_eq!(info.geometry.slot_count, 4);
    });
}

#[test]
fn a_publisher_that_finds_its_name_taken_is_told_by_whom() {
    with_squatter(|prefix, topic| {
        let cfg = PublisherConfig::default().prefix(prefix);
        match Publisher::create(topic, cfg) {
            Err(e @ CreateError::AlreadyPublished { .. }) => {
                let text = e.to_string();
                let CreateError::AlreadyPublished { holder, .. } = e else {
                    unreachable!()
                };
                assert_eq!(holder.uid, OTHER);
                assert!(text.contains("uid 65534"), "{text}");
            }
            Err(e) => panic!("expected AlreadyPublished naming the squatter, got {e}"),
            Ok(_) => panic!("created a topic whose name another user's live publisher holds"),
        }
    });
}

#[test]
fn own_and_root_segments_are_trusted_by_default() {
    let prefix = common::prefix("trust");
    let topic = common::topic("own");
    let _cleanup = Cleanup(prefix.clone(), topic.clone());
    let mut p = Publisher::create(&topic, PublisherConfig::default().prefix(&prefix)).unwrap();
    let mut sub = Subscriber::attach(&topic, SubscriberOptions::default().prefix(&prefix)).unwrap();
    p.send(b"mine").unwrap();
    assert_eq!(&*sub.try_recv().unwrap(), b"mine");
}
