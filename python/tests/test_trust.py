"""Another local user's segment under a topic's name is refused unless trusted, with the
owner named (the other user is `nobody`, uid 65534, which a root test process can run a
child as; elsewhere the test is skipped saying why)."""

import os
import subprocess
import sys

import pytest

import ringcast
from conftest import rust_bin

OTHER = 65534

# Everything is imported before the child becomes `nobody` (the interpreter's own files
# may not be readable by that user).
SQUAT = """
import os, sys, time, ringcast
os.setgid(65534)
os.setuid(65534)
pub = ringcast.Publisher(sys.argv[2], slots=4, slot_size=64, overflow="overwrite", prefix=sys.argv[1])
pub.send(b"forged")
print("READY", flush=True)
time.sleep(60)
"""


@pytest.fixture
def squatter(prefix, topic):
    if os.geteuid() != 0:
        pytest.skip("needs root to run a child as another user")
    child = subprocess.Popen(
        [sys.executable, "-c", SQUAT, prefix, topic], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout.readline().strip() == "READY"
        yield
    finally:
        child.kill()
        child.wait()


def test_another_users_topic_is_refused_unless_trusted(prefix, topic, squatter):
    with pytest.raises(ringcast.UntrustedOwner) as e:
        ringcast.Subscriber(topic, prefix=prefix, start="oldest")
    assert e.value.uid == OTHER and "uid 65534" in str(e.value)
    assert isinstance(e.value, ringcast.PermissionDenied)
    for kw in ({"trust_users": [OTHER]}, {"trust_groups": [OTHER]}, {"trust_any_owner": True}):
        with ringcast.Subscriber(topic, prefix=prefix, start="oldest", **kw) as sub:
            assert bytes(sub.recv(timeout=5)) == b"forged"


def test_a_publisher_is_told_who_holds_its_name(prefix, topic, squatter):
    with pytest.raises(ringcast.AlreadyExists, match="uid 65534"):
        ringcast.Publisher(topic, prefix=prefix)


LOCKED_ATTACH = """
import os, resource, sys, ringcast
os.setgid(65534)
os.setuid(65534)  # no CAP_IPC_LOCK now: mlock is bounded by RLIMIT_MEMLOCK
resource.setrlimit(resource.RLIMIT_MEMLOCK, (64 * 1024, 64 * 1024))
try:
    ringcast.Subscriber(sys.argv[2], prefix=sys.argv[1], lock_memory=True)
except ringcast.ResourceExhausted as e:
    print("ResourceExhausted", e)
except Exception as e:
    print("other", type(e).__name__, e)
else:
    print("attached")
"""


def test_a_subscriber_that_cannot_lock_its_mapping_gets_resource_exhausted(prefix, topic):
    """AttachError::Memory (mlock over RLIMIT_MEMLOCK without CAP_IPC_LOCK) is a
    ResourceExhausted, like every other resource shortage."""
    if os.geteuid() != 0:
        pytest.skip("needs root to run a child without CAP_IPC_LOCK as another user")
    # Mode 0666, so the unprivileged child may attach (a subscriber writes its own table
    # entry); root's topics are trusted.
    pub = subprocess.Popen(
        [rust_bin("ringcast"), "--prefix", prefix, "pub", topic, "--slots", "64",
         "--slot-size", "65536", "--mode", "666"],
        stdin=subprocess.PIPE,
    )
    try:
        ringcast.Subscriber(topic, prefix=prefix, wait=10).close()
        out = subprocess.run(
            [sys.executable, "-c", LOCKED_ATTACH, prefix, topic],
            capture_output=True, text=True, timeout=60,
        )
        assert out.stdout.startswith("ResourceExhausted"), out.stdout + out.stderr
        assert "mlock" in out.stdout, out.stdout
    finally:
        pub.stdin.close()
        pub.wait(timeout=30)


def test_a_publisher_sets_the_mode_asked_for(prefix, topic):
    for mode in (0o600, 0o640):
        name = f"{topic}m{mode:o}"
        pub = ringcast.Publisher(name, prefix=prefix, mode=mode)
        assert os.stat(f"/dev/shm/{prefix}.{name}").st_mode & 0o777 == mode
        pub.close()
