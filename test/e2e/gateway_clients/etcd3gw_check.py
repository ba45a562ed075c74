# Drives python3-etcd3gw (OpenStack's /v3 gateway client) against one endpoint and
# prints what it saw, one line per step, for the test to compare tskv with etcd.
import sys
import etcd3gw

host, port = sys.argv[1], int(sys.argv[2])
c = etcd3gw.Etcd3Client(host=host, port=port, api_path="/v3beta/")
out = []
out.append(("put", c.put("k1", "v1")))
out.append(("get", c.get("k1")))
lease = c.lease(ttl=30)
out.append(("lease-id-big", lease.id > 2**53))
out.append(("put-lease", c.put("k2", "v2", lease=lease)))
out.append(("refresh", lease.refresh()))
ttl = lease.ttl()
out.append(("ttl", 28 <= ttl <= 30))
out.append(("keys", sorted(k.decode() if isinstance(k, bytes) else k for k in lease.keys())))
out.append(("prefix", sorted(v for v, _ in c.get_prefix("k"))))
lock = c.lock("mylock", ttl=30)
out.append(("lock", lock.acquire()))
out.append(("locked", lock.is_acquired()))
out.append(("lock-refresh", lock.refresh() > 0))
out.append(("unlock", lock.release()))
out.append(("revoke", lease.revoke()))
out.append(("after-revoke", c.get("k2")))
out.append(("delete", c.delete("k1")))
out.append(("replace", c.replace("k1", "x", "y")))
for step in out:
    print(repr(step))
