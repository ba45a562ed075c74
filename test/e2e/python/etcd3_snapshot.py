# python-etcd3's snapshot test (tests/test_etcd3.py TestEtcd3.test_snapshot:
# etcd.snapshot(f) into a temp file, then `etcdctl snapshot status` of it must
# succeed), with the Debian package python3-etcd3, against the endpoint in
# argv[1]. The Debian package ships the library without its tests, so the test
# is written out here; it also checks the revision and key count etcdctl reads.
import json
import os
import subprocess
import sys
import tempfile

import etcd3

host, port = sys.argv[1].rsplit(":", 1)
etcd = etcd3.client(host=host, port=int(port))
for i in range(10):
    etcd.put("/doot/snapshot/%d" % i, "v%d" % i)
etcd.delete("/doot/snapshot/9")
_, meta = etcd.get("/doot/snapshot/0")
revision = meta.response_header.revision

with tempfile.NamedTemporaryFile() as f:
    etcd.snapshot(f)
    f.flush()
    out = subprocess.run(
        ["etcdctl", "-w", "json", "--endpoints=" + sys.argv[1], "snapshot", "status", f.name],
        env=dict(os.environ, ETCDCTL_API="3"), capture_output=True, check=True,
    )
    status = json.loads(out.stdout)
    print(json.dumps({"status": status, "revision": revision, "size": os.path.getsize(f.name)}))
