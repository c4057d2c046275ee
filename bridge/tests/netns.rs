//! Two hosts in two network namespaces joined by a veth pair, where the machine allows it
//! (root, with `ip` from iproute2): the bridges meet over a real (virtual) interface and
//! their own network stacks, not loopback. Skipped, saying why, elsewhere.

mod harness;

use std::process::Command;

use harness::*;
use ringcast::*;

/// Two namespaces and the veth between them, removed on drop.
struct Hosts {
    a: String,
    b: String,
    addr_a: String,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Hosts {
    fn setup() -> Result<Hosts, String> {
        let id = std::process::id();
        let (a, b) = (format!("rcbra{id}"), format!("rcbrb{id}"));
        let (va, vb) = (
            format!("rcva{}", id % 100_000),
            format!("rcvb{}", id % 100_000),
        );
        let net = format!("10.{}.{}", 64 + (id / 250) % 64, id % 250);
        let hosts = Hosts {
            a: a.clone(),
            b: b.clone(),
            addr_a: format!("{net}.1"),
        };
        ip(&["netns", "add", &a])?;
        ip(&["netns", "add", &b])?;
        ip(&["link", "add", &va, "type", "veth", "peer", "name", &vb])?;
        ip(&["link", "set", &va, "netns", &a])?;
        ip(&["link", "set", &vb, "netns", &b])?;
        ip(&["-n", &a, "addr", "add", &format!("{net}.1/24"), "dev", &va])?;
        ip(&["-n", &b, "addr", "add", &format!("{net}.2/24"), "dev", &vb])?;
        for (ns, dev) in [(&a, &va), (&b, &vb)] {
            ip(&["-n", ns, "link", "set", dev, "up"])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
        }
        Ok(hosts)
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        // Deleting a namespace deletes the veth end inside it, and with it the pair.
        let _ = ip(&["netns", "del", &self.a]);
        let _ = ip(&["netns", "del", &self.b]);
    }
}

#[test]
fn bridges_in_two_network_namespaces_carry_a_block_topic() {
    let hosts = match Hosts::setup() {
        Ok(h) => h,
        Err(why) => {
            eprintln!("skipped: this machine cannot make network namespaces here ({why})");
            return;
        }
    };
    let mut pair = Pair::new("ns");
    let topic = "t";
    pair.topics(&[topic]);
    let endpoint = format!("tcp/{}:7447", hosts.addr_a);
    let arg = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let mut a = Proc::spawn_in(
        Some(&hosts.a),
        &arg(&[
            "--prefix",
            &pair.a,
            "--domain",
            &pair.domain,
            "--listen",
            &endpoint,
            "--export",
            topic,
        ]),
    );
    let mut b = Proc::spawn_in(
        Some(&hosts.b),
        &arg(&[
            "--prefix",
            &pair.b,
            "--domain",
            &pair.domain,
            "--connect",
            &endpoint,
            "--import",
            topic,
        ]),
    );
    // /dev/shm is shared (one mount namespace): this process plays both applications.
    let mut src = Publisher::create(
        topic,
        PublisherConfig::default()
            .prefix(pair.a.as_str())
            .overflow(Overflow::Block)
            .slots(256)
            .slot_size(1024),
    )
    .unwrap();
    let mut sub = attach(&pair.b, topic);
    src.wait_for_subscribers(1, WAIT)
        .expect("the exporter attaches");
    const M: u64 = 10_000;
    let rx = std::thread::spawn(move || {
        for i in 0..M {
            let s = sub
                .recv_timeout(WAIT)
                .unwrap_or_else(|e| panic!("message {i}: {e}"));
            let want: Vec<u8> = (0..len_of(i, 1024)).map(|j| pattern(i, j)).collect();
            assert_eq!(s.bytes(), want, "message {i}");
        }
        sub
    });
    for i in 0..M {
        let bytes: Vec<u8> = (0..len_of(i, 1024)).map(|j| pattern(i, j)).collect();
        src.send(&bytes).unwrap();
    }
    let mut sub = rx.join().expect("receiver");
    drop(src);
    match sub.recv_timeout(WAIT) {
        Err(RecvTimeoutError::Disconnected) => {}
        other => panic!("expected the end, got {:?}", other.map(|s| s.seq())),
    }
    assert_eq!(sub.upstream_lost(), 0);
    for (p, host) in [(&mut a, "A"), (&mut b, "B")] {
        let status = p.interrupt();
        assert!(status.success(), "bridge {host}: {status:?}\n{}", p.log());
    }
}
