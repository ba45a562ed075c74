# Drives OpenStack tooz's etcd3gw coordination driver (Debian python3-tooz) against one
# endpoint: locks, group membership with heartbeats and a membership lease that
# expires; prints one line per step, for the test to compare tskv with etcd.
import sys
import time

import etcd3gw
from tooz import coordination

# Debian bookworm pairs tooz 3.1 with etcd3gw 2.0, whose client() lacks the api_path
# argument tooz passes (etcd3gw 2.1 added it): give it one, as 2.1's client() does.
def _client(host="localhost", port=2379, ca_cert=None, cert_key=None, cert_cert=None, timeout=None, protocol="http", api_path="/v3alpha/"):
    return etcd3gw.Etcd3Client(host=host, port=port, protocol=protocol, ca_cert=ca_cert, cert_key=cert_key, cert_cert=cert_cert, timeout=timeout, api_path=api_path)


etcd3gw.client = _client

host, port = sys.argv[1], int(sys.argv[2])
base = "etcd3+http://%s:%d" % (host, port)
url = base + "?api_version=v3&timeout=5&lock_timeout=10&membership_timeout=10"
out = []


def step(name, fn):
    try:
        out.append((name, fn()))
    except Exception as e:  # the exception's type is part of the behaviour compared
        out.append((name, "raised " + type(e).__name__))


def norm(v):
    if isinstance(v, (set, list)):
        return sorted(x.decode() if isinstance(x, bytes) else x for x in v)
    return v


c1 = coordination.get_coordinator(url, b"m1")
c1.start()
c2 = coordination.get_coordinator(url, b"m2")
c2.start()

# Locks: exclusive between two coordinators, kept alive by heartbeats.
l1 = c1.get_lock(b"lk")
l2 = c2.get_lock(b"lk")
step("l1-acquire", lambda: l1.acquire(blocking=False))
step("l2-acquire-busy", lambda: l2.acquire(blocking=False))
step("l1-acquired", lambda: l1.acquired)
step("c1-heartbeat", lambda: c1.heartbeat())
step("l1-heartbeat", lambda: l1.heartbeat())
step("l2-release-not-held", lambda: l2.release())
step("l1-release", lambda: l1.release())
step("l1-release-again", lambda: l1.release())
step("l2-acquire-blocking", lambda: l2.acquire(blocking=2))
step("l2-release", lambda: l2.release())
with c1.get_lock(b"ctx") as held:
    step("ctx-acquired", lambda: held.acquired)
step("ctx-after", lambda: c1.get_lock(b"ctx").acquire(blocking=False))

# Groups: create, join with capabilities, members, leave, delete.
step("create", lambda: c1.create_group(b"g").get())
step("create-again", lambda: c2.create_group(b"g").get())
step("join-missing", lambda: c1.join_group(b"nope").get())
step("join-1", lambda: c1.join_group(b"g", b"cap1").get())
step("join-2", lambda: c2.join_group(b"g", {"weight": 2}).get())
step("join-1-again", lambda: c1.join_group(b"g").get())
step("members", lambda: norm(c1.get_members(b"g").get()))
step("cap-2", lambda: c1.get_member_capabilities(b"g", b"m2").get())
step("update-cap-1", lambda: c1.update_capabilities(b"g", b"cap1b").get())
step("cap-1", lambda: c2.get_member_capabilities(b"g", b"m1").get())
step("groups", lambda: norm(c1.get_groups().get()))
step("delete-not-empty", lambda: c1.delete_group(b"g").get())
step("c2-heartbeat", lambda: c2.heartbeat())
step("leave-2", lambda: c2.leave_group(b"g").get())
step("leave-2-again", lambda: c2.leave_group(b"g").get())
step("members-after-leave", lambda: norm(c1.get_members(b"g").get()))

# A member whose membership lease is not renewed drops out; a heartbeating one stays.
c3 = coordination.get_coordinator(base + "?api_version=v3&timeout=5&membership_timeout=2", b"m3")
c3.start(start_heart=False)
step("join-3", lambda: c3.join_group(b"g").get())
step("members-with-3", lambda: norm(c1.get_members(b"g").get()))
for _ in range(9):
    c1.heartbeat()
    time.sleep(0.5)
step("members-after-expiry", lambda: norm(c1.get_members(b"g").get()))
step("c3-heartbeat-new-lease", lambda: c3.heartbeat())
step("cap-3-gone", lambda: c1.get_member_capabilities(b"g", b"m3").get())

step("leave-1", lambda: c1.leave_group(b"g").get())
step("delete", lambda: c1.delete_group(b"g").get())
step("delete-again", lambda: c1.delete_group(b"g").get())
step("groups-end", lambda: norm(c1.get_groups().get()))

# tooz's default API path is /v3alpha/, which etcd 3.4 no longer serves.
c4 = coordination.get_coordinator(base + "?timeout=5", b"m4")
step("v3alpha-start", lambda: c4.start(start_heart=False))

for c in (c1, c2, c3):
    c.stop()
for s in out:
    print(repr(s))
