# python3-etcd (Debian) against a member with --enable-v2: reads, writes,
# directories, in-order keys, CAS, TTL expiry and watches. Prints one line per
# call with what came back (indexes relative to the first write), so that the
# output on etcd 3.4 and on tskv can be compared line by line.
import re
import sys
import threading
import time

import etcd

host, port = sys.argv[1], int(sys.argv[2])
c = etcd.Client(host=host, port=port, read_timeout=10)
base = None


def rel(i):
    return None if i is None else i - base


def inorder(text):
    """In-order keys are named by the store index: relative, like the indexes."""
    return re.sub(r"/(\d{20})", lambda m: "/+%d" % rel(int(m.group(1))), str(text))


def show(name, f):
    try:
        r = f()
        if isinstance(r, etcd.EtcdResult):
            kids = sorted((ch.key, ch.value) for ch in r.leaves) if r.dir else None
            print(name, r.action, inorder(r.key), r.value, r.dir, rel(r.modifiedIndex), rel(r.createdIndex), r.ttl, inorder(kids))
        else:
            print(name, r)
    except etcd.EtcdException as e:
        print(name, type(e).__name__, str(e).split(" : ")[0])


r = c.write("/py/a", "1")
base = r.modifiedIndex
show("write", lambda: r)
show("read", lambda: c.read("/py/a"))
show("get", lambda: c.get("/py/a"))
show("read missing", lambda: c.read("/py/missing"))
show("write prevExist=False", lambda: c.write("/py/a", "2", prevExist=False))
show("write prevValue wrong", lambda: c.write("/py/a", "2", prevValue="nope"))
show("write prevValue right", lambda: c.write("/py/a", "2", prevValue="1"))
show("test_and_set", lambda: c.test_and_set("/py/a", "3", "2"))
show("write prevIndex wrong", lambda: c.write("/py/a", "4", prevIndex=1))
def update():
    r = c.read("/py/a")
    r.value = "5"
    return c.update(r)


show("update", update)
show("mkdir", lambda: c.write("/py/dir", None, dir=True))
show("write in dir", lambda: c.write("/py/dir/x", "x"))
show("write on a dir", lambda: c.write("/py/dir", "v"))
show("append", lambda: c.write("/py/queue", "j1", append=True))
show("append 2", lambda: c.write("/py/queue", "j2", append=True))
show("read recursive", lambda: c.read("/py", recursive=True, sorted=True))
show("delete a dir", lambda: c.delete("/py/dir"))
show("delete dir not recursive", lambda: c.delete("/py/dir", dir=True))
show("delete recursive", lambda: c.delete("/py/dir", recursive=True))
show("delete prevValue wrong", lambda: c.delete("/py/a", prevValue="zzz"))
show("ttl write", lambda: c.write("/py/ttl", "t", ttl=1))
show("refresh", lambda: c.refresh("/py/ttl", ttl=1))
show("watch expire", lambda: c.watch("/py/ttl", timeout=8))
show("read expired", lambda: c.read("/py/ttl"))
show("watch from index", lambda: c.watch("/py/a", index=base + 1, timeout=5))
got = []
t = threading.Thread(target=lambda: got.append(c.watch("/py/w", recursive=True, timeout=8)))
t.start()
time.sleep(0.5)
c.write("/py/w/k", "watched")
t.join()
show("watch", lambda: got[0])
show("eternal_watch", lambda: next(c.eternal_watch("/py/a", index=base)))
show("machines", lambda: len(c.machines))
show("leader", lambda: sorted(c.leader.keys()))
show("members", lambda: [sorted(m.keys()) for m in c.members.values()])
show("stats", lambda: sorted(c.stats.keys()))
show("store_stats", lambda: sorted(c.store_stats.keys()))
# tskv answers /version with its own etcdserver version: only its presence is compared.
show("version", lambda: c.version.count(".") == 2)
