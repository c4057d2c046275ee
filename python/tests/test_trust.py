"""Another local user's segment under a topic's name is refused unless trusted, with the
owner named (the other user is `nobody`, uid 65534, which a root test process can run a
child as; elsewhere the test is skipped saying why)."""

import os
import subprocess
import sys

import pytest

import ringcast

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
