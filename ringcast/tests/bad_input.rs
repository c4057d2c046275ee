//! Bad input: files that are not segments, truncated or corrupted segments, invalid names,
//! oversized messages, a second publisher, the wrong message type, missing permissions and
//! a hostile publisher. Each must be refused with a precise typed error: never a panic, a
//! hang or undefined behaviour.
//!
//! Every test works under a private prefix (`rcbad<pid>`) with its own topic name, and
//! removes every `/dev/shm` file it makes, even when it fails.

use std::fs;
use std::io::Write;
use std::mem::offset_of;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use ringcast::*;
use ringcast_core::geometry::HEADER_BYTES;
use ringcast_core::layout::{Identity, LAYOUT_VERSION, MAGIC};

/// The prefix every segment of this test binary lives under.
fn prefix() -> String {
    format!("rcbad{}", std::process::id())
}

/// The file behind `topic` under our prefix.
fn shm_path(topic: &str) -> PathBuf {
    PathBuf::from(format!("/dev/shm/{}.{topic}", prefix()))
}

/// Removes `/dev/shm/<prefix>.<topic>` when dropped (declare it before any publisher, so
/// it drops last).
struct ShmGuard {
    path: PathBuf,
}

impl ShmGuard {
    fn new(topic: &str) -> Self {
        let path = shm_path(topic);
        // A leftover of a crashed earlier run with the same PID.
        let _ = fs::remove_file(&path);
        ShmGuard { path }
    }

    /// Creates the file (exclusively, mode 0600) with exactly `bytes` in it.
    fn write(&self, bytes: &[u8]) {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&self.path)
            .unwrap_or_else(|e| panic!("creating {}: {e}", self.path.display()));
        f.write_all(bytes).unwrap();
    }
}

impl Drop for ShmGuard {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

fn pub_cfg() -> PublisherConfig {
    PublisherConfig::default().prefix(prefix())
}

fn sub_opts() -> SubscriberOptions {
    SubscriberOptions::default()
        .prefix(prefix())
        .init_wait(Duration::from_millis(20))
}

/// Attaches, expecting an error (`Subscriber` is not `Debug`, so no `unwrap_err`).
fn attach_err(topic: &str, opts: SubscriberOptions) -> AttachError {
    let started = Instant::now();
    let r = Subscriber::attach(topic, opts);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "attach to {topic:?} took {:?}",
        started.elapsed()
    );
    match r {
        Ok(_) => panic!("attaching to {topic:?} succeeded; an error was expected"),
        Err(e) => e,
    }
}

/// Creates, expecting an error.
fn create_err(topic: &str, cfg: PublisherConfig) -> CreateError {
    match Publisher::create(topic, cfg) {
        Ok(_) => panic!("creating {topic:?} succeeded; an error was expected"),
        Err(e) => e,
    }
}

/// Asserts that `$e` matches the pattern (and guard), printing the error otherwise.
macro_rules! assert_err {
    ($e:expr, $($p:pat_param)|+ $(if $g:expr)?) => {{
        let e = $e;
        assert!(
            matches!(&e, $($p)|+ $(if $g)?),
            "expected {}, got {:?}",
            stringify!($($p)|+ $(if $g)?),
            e
        );
        e
    }};
}

fn word(bytes: &[u8], off: usize) -> u64 {
    u64::from_ne_bytes(bytes[off..off + 8].try_into().unwrap())
}

fn set_word(bytes: &mut [u8], off: usize, v: u64) {
    bytes[off..off + 8].copy_from_slice(&v.to_ne_bytes());
}

/// The bytes of a real, freshly created default segment (its publisher already gone).
fn segment_image(topic: &str) -> Vec<u8> {
    let _g = ShmGuard::new(topic);
    let p = Publisher::create(topic, pub_cfg()).unwrap();
    let bytes = fs::read(shm_path(topic)).unwrap();
    drop(p);
    assert!(bytes.len() as u64 > HEADER_BYTES);
    assert_eq!(
        word(&bytes, offset_of!(Identity, total_size)),
        bytes.len() as u64
    );
    bytes
}

/// Writes `bytes` as `topic` and attaches to it, expecting an error.
fn attach_image_err(topic: &str, bytes: &[u8]) -> AttachError {
    let g = ShmGuard::new(topic);
    g.write(bytes);
    let e = attach_err(topic, sub_opts());
    drop(g);
    e
}

// 1. Not a segment.

#[test]
fn foreign_file_is_not_a_segment() {
    let topic = "foreign";
    let g = ShmGuard::new(topic);
    let junk = vec![0xABu8; 4096];
    g.write(&junk);

    assert_err!(
        attach_err(topic, sub_opts()),
        AttachError::NotASegment { topic: t } if t == topic
    );
    assert_err!(
        create_err(topic, pub_cfg()),
        CreateError::NotASegment { topic: t } if t == topic
    );
    // Create refused and did not touch the foreign file.
    assert_eq!(fs::read(&g.path).unwrap(), junk);

    // Text, too.
    let topic = "foreign-text";
    let g = ShmGuard::new(topic);
    let text = b"this is a text file, not a ringcast segment\n".repeat(100);
    g.write(&text);
    assert_err!(
        attach_err(topic, sub_opts()),
        AttachError::NotASegment { topic: t } if t == topic
    );
    assert_err!(
        create_err(topic, pub_cfg()),
        CreateError::NotASegment { topic: t } if t == topic
    );
    assert_eq!(fs::read(&g.path).unwrap(), text);
}

// 2. Empty: looks like a segment still being initialized; the wait is bounded.

#[test]
fn empty_file_is_not_ready_after_the_bounded_wait() {
    let topic = "empty";
    let g = ShmGuard::new(topic);
    g.write(&[]);
    let started = Instant::now();
    assert_err!(
        attach_err(topic, sub_opts()),
        AttachError::NotReady { topic: t, waited_ms } if t == topic && *waited_ms >= 20
    );
    assert!(started.elapsed() >= Duration::from_millis(20));

    // Creating over it refuses (a segment never appears under its name half made) and
    // leaves the file alone.
    assert_err!(
        create_err(topic, pub_cfg()),
        CreateError::NotASegment { topic: t } if t == topic
    );
    assert_eq!(fs::metadata(&g.path).unwrap().len(), 0);
}

// 3. Truncated.

#[test]
fn truncated_segment_is_too_small() {
    let image = segment_image("trunc-src");
    let header_size = word(&image, offset_of!(Identity, header_size));
    let total = image.len() as u64;

    let cut = (header_size + 100) as usize;
    assert_err!(
        attach_image_err("trunc-ring", &image[..cut]),
        AttachError::TooSmall { topic: t, actual, needed }
            if t == "trunc-ring" && *actual == cut as u64 && *needed == total
    );
    // Exactly the header pages, no ring.
    let cut = header_size as usize;
    assert_err!(
        attach_image_err("trunc-header", &image[..cut]),
        AttachError::TooSmall { actual, needed, .. } if *actual == cut as u64 && *needed == total
    );
    // One byte short.
    assert_err!(
        attach_image_err("trunc-1", &image[..image.len() - 1]),
        AttachError::TooSmall { actual, needed, .. } if *actual == total - 1 && *needed == total
    );
    // Inside the fixed 640-byte header.
    for cut in [400usize, HEADER_BYTES as usize - 1, 8] {
        let topic = format!("trunc-fixed-{cut}");
        assert_err!(
            attach_image_err(&topic, &image[..cut]),
            AttachError::TooSmall { topic: t, actual, needed }
                if *t == topic && *actual == cut as u64 && *needed == HEADER_BYTES
        );
    }

    // Control: the uncut copy attaches.
    let g = ShmGuard::new("trunc-none");
    g.write(&image);
    let sub = Subscriber::attach("trunc-none", sub_opts()).unwrap_or_else(|e| panic!("{e:?}"));
    drop(sub);
}

// 4. Magic and version.

#[test]
fn wrong_version_and_wrong_magic() {
    let image = segment_image("ver-src");
    let mv = word(&image, 0);
    assert_eq!(mv, ((MAGIC as u64) << 32) | LAYOUT_VERSION as u64);

    for version in [LAYOUT_VERSION + 1, 0, u32::MAX] {
        let mut bad = image.clone();
        set_word(&mut bad, 0, (mv & !0xFFFF_FFFF) | version as u64);
        let topic = format!("ver-{version}");
        assert_err!(
            attach_image_err(&topic, &bad),
            AttachError::Version { topic: t, found, expected }
                if *t == topic && *found == version && *expected == LAYOUT_VERSION
        );
    }

    // Another magic, the right version.
    let mut bad = image.clone();
    set_word(
        &mut bad,
        0,
        ((u32::from_be_bytes(*b"XXXX") as u64) << 32) | LAYOUT_VERSION as u64,
    );
    assert_err!(
        attach_image_err("magic-other", &bad),
        AttachError::NotASegment { topic: t } if t == "magic-other"
    );
    // The magic/version word byte-swapped (a segment of the other endianness).
    let mut bad = image.clone();
    set_word(&mut bad, 0, mv.swap_bytes());
    assert_err!(
        attach_image_err("magic-swapped", &bad),
        AttachError::NotASegment { .. }
    );
    // Magic only in the low half.
    let mut bad = image.clone();
    set_word(&mut bad, 0, MAGIC as u64);
    assert_err!(
        attach_image_err("magic-low", &bad),
        AttachError::NotASegment { .. }
    );
}

// 5. Impossible geometry.

#[test]
fn impossible_geometry_is_refused() {
    let image = segment_image("geo-src");
    let header_size = word(&image, offset_of!(Identity, header_size));
    let total = image.len() as u64;
    let stride = word(&image, offset_of!(Identity, slot_stride));

    let patched = |off: usize, v: u64| {
        let mut b = image.clone();
        set_word(&mut b, off, v);
        b
    };
    let geometry = |topic: &str, bytes: &[u8], what_has: &str| {
        let e = attach_image_err(topic, bytes);
        assert_err!(
            e,
            AttachError::Geometry { topic: t, what } if t == topic && what.contains(what_has)
        );
    };
    let too_small = |topic: &str, bytes: &[u8], want_actual: u64, want_needed: u64| {
        let e = attach_image_err(topic, bytes);
        assert_err!(
            e,
            AttachError::TooSmall { topic: t, actual, needed }
                if t == topic && *actual == want_actual && *needed == want_needed
        );
    };

    // Slot count: not a power of two, zero, one, enormous.
    let sc = offset_of!(Identity, slot_count);
    geometry("geo-slots3", &patched(sc, 3), "slot count 3");
    geometry("geo-slots0", &patched(sc, 0), "slot count 0");
    geometry("geo-slots1", &patched(sc, 1), "slot count 1");
    geometry("geo-slotsmax", &patched(sc, u64::MAX), "slot count");
    geometry("geo-slots512", &patched(sc, 512), "total size");

    // Stride.
    let st = offset_of!(Identity, slot_stride);
    geometry("geo-stridemax", &patched(st, u64::MAX), "slot stride");
    geometry("geo-stride0", &patched(st, 0), "slot stride");
    geometry(
        "geo-stride-small",
        &patched(st, stride - 128),
        "slot stride",
    );

    // Total size: smaller than the geometry implies (Geometry), larger than the file
    // (TooSmall, checked first), or consistent but not the file's size (Geometry).
    let ts = offset_of!(Identity, total_size);
    geometry("geo-total-less", &patched(ts, total - 1), "total size");
    too_small("geo-total-more", &patched(ts, total + 1), total, total + 1);
    too_small("geo-total-max", &patched(ts, u64::MAX), total, u64::MAX);
    let mut longer = image.clone();
    longer.resize(longer.len() + 4096, 0);
    geometry("geo-file-longer", &longer, "the file has");

    // Header size: enormous (beyond the file: TooSmall), or wrong but inside it (Geometry).
    let hs = offset_of!(Identity, header_size);
    too_small("geo-header-max", &patched(hs, u64::MAX), total, u64::MAX);
    too_small("geo-header-huge", &patched(hs, 1 << 40), total, 1 << 40);
    geometry("geo-header-0", &patched(hs, 0), "header size");
    geometry("geo-header-small", &patched(hs, 4096), "header size");
    geometry(
        "geo-header-big",
        &patched(hs, header_size + 4096),
        "header size",
    );

    // Overflow policy word.
    let ov = offset_of!(Identity, overflow);
    geometry(
        "geo-overflow7",
        &patched(ov, 7),
        "unknown overflow policy 7",
    );
    geometry(
        "geo-overflowmax",
        &patched(ov, u64::MAX),
        "unknown overflow policy",
    );

    // Stall timeout: on an Overwrite topic, or out of range on a Block one.
    let sto = offset_of!(Identity, stall_timeout_ns);
    geometry(
        "geo-stall-overwrite",
        &patched(sto, 1_000_000),
        "needs Overflow::Block",
    );
    let mut block = patched(ov, 1);
    set_word(&mut block, sto, 1);
    geometry("geo-stall-1ns", &block, "stall timeout 1ns");
    set_word(&mut block, sto, u64::MAX);
    geometry("geo-stall-max", &block, "stall timeout");

    // Everything else the geometry is derived from.
    let ca = offset_of!(Identity, slot_capacity);
    geometry("geo-cap0", &patched(ca, 0), "slot size 0");
    geometry("geo-capmax", &patched(ca, u64::MAX), "slot size");
    geometry("geo-cap-big", &patched(ca, 1 << 20), "total size");
    let al = offset_of!(Identity, alignment);
    geometry("geo-align0", &patched(al, 0), "alignment 0");
    geometry("geo-align24", &patched(al, 24), "alignment 24");
    geometry("geo-align4096", &patched(al, 4096), "total size");
    let ms = offset_of!(Identity, max_subscribers);
    geometry("geo-subs0", &patched(ms, 0), "max subscribers 0");
    geometry("geo-subsmax", &patched(ms, u64::MAX), "max subscribers");
    geometry("geo-subs-many", &patched(ms, 4096), "header size");
    let po = offset_of!(Identity, payload_offset);
    geometry("geo-payload-off", &patched(po, stride), "payload offset");
    let to = offset_of!(Identity, table_offset);
    geometry("geo-table-off", &patched(to, 1 << 30), "table offset");
    geometry("geo-table-0", &patched(to, 0), "table offset");
    // The lane count (many publishers per topic): absent, absurd, or one that the sizes
    // do not allow.
    let mp = offset_of!(Identity, max_publishers);
    geometry("geo-lanes0", &patched(mp, 0), "max publishers 0");
    geometry("geo-lanesmax", &patched(mp, u64::MAX), "max publishers");
    geometry("geo-lanes-more", &patched(mp, 2), "the geometry implies");

    // Control: the unpatched copy attaches.
    let g = ShmGuard::new("geo-copy");
    g.write(&image);
    let sub = Subscriber::attach("geo-copy", sub_opts()).unwrap_or_else(|e| panic!("{e:?}"));
    drop(sub);
}

// 6. Names.

fn bad_names() -> Vec<(String, NameError)> {
    vec![
        ("../x".into(), NameError::LeadingDot),
        ("".into(), NameError::Empty),
        ("a".repeat(201), NameError::TooLong { len: 201, max: 200 }),
        ("/".into(), NameError::BadChar { ch: '/', pos: 0 }),
        ("a/b".into(), NameError::BadChar { ch: '/', pos: 1 }),
        (".hidden".into(), NameError::LeadingDot),
        ("..".into(), NameError::LeadingDot),
        (".".into(), NameError::LeadingDot),
        ("sp ace".into(), NameError::BadChar { ch: ' ', pos: 2 }),
        (
            "caf\u{e9}".into(),
            NameError::BadChar {
                ch: '\u{e9}',
                pos: 3,
            },
        ),
        ("nul\0".into(), NameError::BadChar { ch: '\0', pos: 3 }),
        ("x\n".into(), NameError::BadChar { ch: '\n', pos: 1 }),
    ]
}

#[test]
fn invalid_topic_names_are_refused() {
    for (name, want) in bad_names() {
        assert_err!(
            create_err(&name, pub_cfg()),
            CreateError::Name { topic, source } if *topic == name && *source == want
        );
        assert_err!(
            attach_err(&name, sub_opts()),
            AttachError::Name { topic, source } if *topic == name && *source == want
        );
    }
    // The longest valid name works.
    let long = "a".repeat(200);
    let _g = ShmGuard::new(&long);
    let p = Publisher::create(&long, pub_cfg()).unwrap();
    let s = Subscriber::attach(&long, sub_opts()).unwrap_or_else(|e| panic!("{e:?}"));
    drop((s, p));
}

#[test]
fn invalid_prefixes_are_refused() {
    let cases = [
        (String::new(), NameError::Empty),
        ("p".repeat(33), NameError::TooLong { len: 33, max: 32 }),
        ("a/b".into(), NameError::BadChar { ch: '/', pos: 1 }),
        ("..".into(), NameError::LeadingDot),
    ];
    for (bad, want) in cases {
        assert_err!(
            create_err("prefix-topic", PublisherConfig::default().prefix(&bad)),
            CreateError::Name { topic, source } if *topic == bad && *source == want
        );
        assert_err!(
            attach_err("prefix-topic", sub_opts().prefix(&bad)),
            AttachError::Name { topic, source } if *topic == bad && *source == want
        );
    }
}

// 7. Too large.

#[test]
fn oversized_message_is_too_large() {
    let topic = "too-large";
    let _g = ShmGuard::new(topic);
    let mut p = Publisher::create(topic, pub_cfg().slots(4).slot_size(64)).unwrap();
    let mut s = Subscriber::attach(topic, sub_opts()).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(p.capacity(), 64);
    assert_eq!(
        p.send(&[7; 65]),
        Err(SendError::TooLarge {
            len: 65,
            capacity: 64
        })
    );
    assert_eq!(
        p.try_send(&[7; 4096]),
        Err(SendError::TooLarge {
            len: 4096,
            capacity: 64
        })
    );
    // Nothing was published; a full-size message still goes through.
    assert_eq!(p.next_seq(), 0);
    assert_eq!(s.try_recv().unwrap_err(), TryRecvError::Empty);
    assert_eq!(p.send(&[7; 64]), Ok(0));
    assert_eq!(&*s.try_recv().unwrap(), &[7; 64]);
}

// 8. Second publisher.

#[test]
fn second_publisher_is_refused() {
    let topic = "twice";
    let _g = ShmGuard::new(topic);
    let mut p = Publisher::create(topic, pub_cfg()).unwrap();
    let mut s = Subscriber::attach(topic, sub_opts()).unwrap_or_else(|e| panic!("{e:?}"));
    for _ in 0..3 {
        assert_err!(
            create_err(topic, pub_cfg()),
            CreateError::AlreadyPublished { topic: t, .. } if t == topic
        );
    }
    // The refused attempts changed nothing: the first publisher still owns the topic.
    assert_eq!(p.send(b"still mine"), Ok(0));
    assert_eq!(&*s.try_recv().unwrap(), b"still mine");
    drop(p);
    assert_eq!(s.try_recv().unwrap_err(), TryRecvError::Disconnected);
}

// 9. Another message type.

#[test]
fn other_message_type_is_a_type_mismatch() {
    let topic = "typed";
    let _g = ShmGuard::new(topic);
    let a = TypeInfo::new("A", 8, 8, 1);
    let _p = Publisher::create(topic, pub_cfg().type_info(a)).unwrap();

    let b = TypeInfo::new("B", 8, 8, 1);
    let e = assert_err!(
        attach_err(topic, sub_opts().expect_type(b)),
        AttachError::TypeMismatch { topic: t, expected, found }
            if t == topic && **expected == b && **found == a
    );
    let msg = e.to_string();
    assert!(msg.contains(" A ") && msg.contains(" B "), "{msg}");

    let a2 = TypeInfo::new("A", 8, 8, 2);
    let e = assert_err!(
        attach_err(topic, sub_opts().expect_type(a2)),
        AttachError::TypeMismatch { expected, found, .. } if **expected == a2 && **found == a
    );
    let msg = e.to_string();
    assert!(
        msg.contains("schema v1") && msg.contains("schema v2"),
        "{msg}"
    );

    let a16 = TypeInfo::new("A", 16, 8, 1);
    assert_err!(
        attach_err(topic, sub_opts().expect_type(a16)),
        AttachError::TypeMismatch { expected, found, .. } if **expected == a16 && **found == a
    );
    assert_err!(
        attach_err(topic, sub_opts().expect_type(TypeInfo::RAW)),
        AttachError::TypeMismatch { expected, found, .. }
            if **expected == TypeInfo::RAW && **found == a
    );

    // A raw-bytes topic refuses a typed subscriber.
    let raw_topic = "typed-raw";
    let _g2 = ShmGuard::new(raw_topic);
    let _p2 = Publisher::create(raw_topic, pub_cfg()).unwrap();
    assert_err!(
        attach_err(raw_topic, sub_opts().expect_type(a)),
        AttachError::TypeMismatch { expected, found, .. }
            if **expected == a && **found == TypeInfo::RAW
    );

    // Controls: the right type, and no expectation at all, attach.
    for opts in [sub_opts().expect_type(a), sub_opts()] {
        let s = Subscriber::attach(topic, opts).unwrap_or_else(|e| panic!("{e:?}"));
        drop(s);
    }
}

// 10. Permissions.

const PERM_PREFIX_VAR: &str = "RINGCAST_BAD_INPUT_PERM_PREFIX";
const PERM_TOPIC_VAR: &str = "RINGCAST_BAD_INPUT_PERM_TOPIC";
const PERM_OP_VAR: &str = "RINGCAST_BAD_INPUT_PERM_OP";
/// `perm_child` exit codes.
const CHILD_PERMISSION_DENIED: i32 = 42;
const CHILD_OK: i32 = 43;
const CHILD_OTHER_ERROR: i32 = 44;
const CHILD_ALREADY_PUBLISHED: i32 = 45;

/// Not a test on its own: `permission_denied` runs it in a child process that has dropped
/// root, and reads the outcome from the exit code.
#[test]
#[ignore = "helper of permission_denied, run in a child process"]
fn perm_child() {
    let (Ok(prefix), Ok(topic), Ok(op)) = (
        std::env::var(PERM_PREFIX_VAR),
        std::env::var(PERM_TOPIC_VAR),
        std::env::var(PERM_OP_VAR),
    ) else {
        return;
    };
    let code = if op == "create" {
        match Publisher::create(&topic, PublisherConfig::default().prefix(prefix)) {
            Ok(_) => CHILD_OK,
            Err(CreateError::PermissionDenied { topic: t, .. }) if t == topic => {
                CHILD_PERMISSION_DENIED
            }
            Err(CreateError::AlreadyPublished { topic: t, .. }) if t == topic => {
                CHILD_ALREADY_PUBLISHED
            }
            Err(e) => {
                eprintln!("perm_child: {e:?}");
                CHILD_OTHER_ERROR
            }
        }
    } else {
        let opts = SubscriberOptions::default()
            .prefix(prefix)
            .init_wait(Duration::from_millis(20));
        match Subscriber::attach(&topic, opts) {
            Ok(_) => CHILD_OK,
            Err(AttachError::PermissionDenied { topic: t }) if t == topic => {
                CHILD_PERMISSION_DENIED
            }
            Err(e) => {
                eprintln!("perm_child: {e:?}");
                CHILD_OTHER_ERROR
            }
        }
    };
    std::process::exit(code);
}

/// Runs `op` ("attach" or "create") on `topic` in a child process running as nobody
/// (uid/gid 65534); returns the child's exit code.
fn as_nobody(op: &str, topic: &str) -> i32 {
    use std::os::unix::process::CommandExt;
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "perm_child", "--nocapture", "--ignored"])
        .env(PERM_PREFIX_VAR, prefix())
        .env(PERM_TOPIC_VAR, topic)
        .env(PERM_OP_VAR, op)
        .uid(65534)
        .gid(65534)
        .output()
        .expect("spawning the test binary as uid 65534");
    eprintln!(
        "child {op} {topic}: {:?}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out.status.code().unwrap_or(-1)
}

/// A live publisher of `topic` whose segment's permission bits are `mode`: made with
/// them if creation takes them, else changed after (a mode without the owner's read and
/// write is refused at creation, but a file can still be given one).
fn with_mode(topic: &str, mode: u32) -> Publisher {
    use std::os::unix::fs::PermissionsExt as _;
    if mode & 0o600 == 0o600 {
        return Publisher::create(topic, pub_cfg().mode(mode)).unwrap();
    }
    assert!(matches!(
        Publisher::create(topic, pub_cfg().mode(mode)),
        Err(CreateError::Config { .. })
    ));
    let p = Publisher::create(topic, pub_cfg()).unwrap();
    fs::set_permissions(shm_path(topic), fs::Permissions::from_mode(mode)).unwrap();
    p
}

#[test]
fn permission_denied() {
    if nix::unistd::Uid::effective().is_root() {
        // Root ignores file modes: ask a child that dropped to nobody.
        for (topic, mode, attach, create) in [
            (
                "perm-600",
                0o600,
                CHILD_PERMISSION_DENIED,
                CHILD_PERMISSION_DENIED,
            ),
            (
                "perm-000",
                0o000,
                CHILD_PERMISSION_DENIED,
                CHILD_PERMISSION_DENIED,
            ),
            // A subscriber needs write access (its table entry).
            (
                "perm-644",
                0o644,
                CHILD_PERMISSION_DENIED,
                CHILD_PERMISSION_DENIED,
            ),
            // Control: with access the child attaches, and meets the live publisher.
            ("perm-666", 0o666, CHILD_OK, CHILD_ALREADY_PUBLISHED),
        ] {
            let _g = ShmGuard::new(topic);
            let _p = with_mode(topic, mode);
            assert_eq!(as_nobody("attach", topic), attach, "attach {topic}");
            assert_eq!(as_nobody("create", topic), create, "create {topic}");
        }
    } else {
        for (topic, mode) in [("perm-000", 0o000), ("perm-400", 0o400)] {
            let _g = ShmGuard::new(topic);
            let _p = with_mode(topic, mode);
            assert_err!(
                attach_err(topic, sub_opts()),
                AttachError::PermissionDenied { topic: t } if t == topic
            );
        }
    }
}

// 11. A hostile publisher.

/// Overwrites the `len` field of the slot holding `seq`, through the file.
fn forge_len(topic: &str, seq: u64, len: u64) {
    let f = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(shm_path(topic))
        .unwrap();
    let mut hdr = vec![0u8; HEADER_BYTES as usize];
    f.read_exact_at(&mut hdr, 0).unwrap();
    let header_size = word(&hdr, offset_of!(Identity, header_size));
    let slot_count = word(&hdr, offset_of!(Identity, slot_count));
    let stride = word(&hdr, offset_of!(Identity, slot_stride));
    // SlotHeader is { stamp: u64, len: u64 }.
    let slot = header_size + (seq % slot_count) * stride;
    f.write_all_at(&len.to_ne_bytes(), slot + 8).unwrap();
}

#[test]
fn lying_length_is_corrupt_and_skipped() {
    for overflow in [Overflow::Overwrite, Overflow::Block] {
        let topic = format!("hostile-{overflow:?}");
        let _g = ShmGuard::new(&topic);
        let mut p =
            Publisher::create(&topic, pub_cfg().slots(4).slot_size(64).overflow(overflow)).unwrap();
        let mut s = Subscriber::attach(&topic, sub_opts()).unwrap_or_else(|e| panic!("{e:?}"));
        let cap = p.capacity() as u64;

        // Just over the capacity, then absurd.
        for (i, lie) in [cap + 1, u64::MAX].into_iter().enumerate() {
            let bad = p.send(b"will be corrupted").unwrap();
            assert_eq!(bad, 2 * i as u64);
            forge_len(&topic, bad, lie);
            // The length is the low half of the `len` word (the high half names the
            // publisher).
            assert_eq!(
                s.try_recv().unwrap_err(),
                TryRecvError::Corrupt {
                    seq: bad,
                    len: lie & 0xFFFF_FFFF
                },
                "{overflow:?}"
            );
            let good = p.send(b"fine").unwrap();
            let m = s.try_recv().unwrap();
            assert_eq!((m.seq(), &*m), (good, &b"fine"[..]), "{overflow:?}");
        }

        // The blocking receives report it too, without waiting.
        let bad = p.send(b"x").unwrap();
        forge_len(&topic, bad, cap + 8);
        assert_eq!(
            s.recv().unwrap_err(),
            RecvError::Corrupt {
                seq: bad,
                len: cap + 8
            }
        );
        let bad = p.send(b"y").unwrap();
        forge_len(&topic, bad, cap * 2);
        assert_eq!(
            s.recv_timeout(Duration::from_secs(5)).unwrap_err(),
            RecvTimeoutError::Corrupt {
                seq: bad,
                len: cap * 2
            }
        );

        // The corrupt slots were released: a whole ring of messages fits again (under
        // Block a held slot would make try_send fail), and all of them arrive.
        let first = p.next_seq();
        for i in 0..4u8 {
            p.try_send(&[i; 8]).unwrap();
        }
        for i in 0..4u8 {
            let m = s.try_recv().unwrap();
            assert_eq!((m.seq(), &*m), (first + i as u64, &[i; 8][..]));
        }
        assert_eq!(s.try_recv().unwrap_err(), TryRecvError::Empty);
    }
}

/// Writes `value` at byte `offset` of the segment file of `topic`.
fn forge_word(topic: &str, offset: u64, value: u64) {
    let f = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(shm_path(topic))
        .unwrap();
    f.write_all_at(&value.to_ne_bytes(), offset).unwrap();
}

/// A hostile process scribbles absurd cursors into the header: a subscriber attaching or
/// receiving afterwards sees garbage it can survive (an error or an empty ring), never an
/// arithmetic-overflow panic. (Both crashed debug builds before sequences read from shared
/// memory got wrapping/saturating arithmetic.)
#[test]
fn absurd_cursors_in_the_header_never_panic_a_subscriber() {
    use ringcast_core::layout::{Lane, PublisherLine};
    // Lane 0's lines start the lane table, right after the header.
    let lane0 = HEADER_BYTES as usize + offset_of!(Lane, publisher);
    let cursor = (lane0 + offset_of!(PublisherLine, write_cursor)) as u64;
    let limit = (lane0 + offset_of!(PublisherLine, gate_limit)) as u64;
    for overflow in [Overflow::Overwrite, Overflow::Block] {
        for (field, value) in [
            (cursor, u64::MAX),
            (cursor, 1 << 63),
            (limit, u64::MAX),
            (limit, 0),
        ] {
            let topic = format!("absurd-{overflow:?}-{field}-{value:x}");
            let _g = ShmGuard::new(&topic);
            let mut p =
                Publisher::create(&topic, pub_cfg().slots(4).slot_size(64).overflow(overflow))
                    .unwrap();
            p.send(b"before").unwrap();
            forge_word(&topic, field, value);
            for start in [Start::Latest, Start::Oldest] {
                let mut s = Subscriber::attach(&topic, sub_opts().start(start))
                    .unwrap_or_else(|e| panic!("attach: {e:?}"));
                for _ in 0..8 {
                    // Any outcome but a panic is acceptable from a corrupted segment.
                    let _ = s.try_recv().map(|m| m.len());
                }
            }
        }
    }
}
