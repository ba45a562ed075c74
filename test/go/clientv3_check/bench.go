package main

// -mode bench: kube-apiserver's storage workload with its own client. Two
// phases, each printed as one JSON line:
//   load:  -objects objects created with the create txn (ModRevision == 0),
//          -clients at a time;
//   mixed: -duration of GuaranteedUpdate (Get, then a txn guarded by the
//          ModRevision it read, Else Get), creates, Gets, list pages
//          (WithRange + WithLimit 500 + WithRev), counts (WithCountOnly) and
//          events written with a shared lease, while -watchers prefix watches
//          with WithPrevKV and WithProgressNotify (the watch cache) follow.
// Every response is checked (a txn that should succeed must), every latency kept.

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/clientv3"
)

type benchOptions struct {
	duration   time.Duration
	clients    int
	conns      int
	objects    int
	valueBytes int
	watchers   int
	run        string // tags this run's keys, so that runs against one server do not collide
	latOut     string // when set: <latOut>.load and <latOut>.mixed get every latency (uint32 µs, little endian)
}

const benchNamespaces = 10

type latencies struct {
	mu  sync.Mutex
	ops map[string][]time.Duration
}

func (l *latencies) add(op string, d time.Duration) {
	l.mu.Lock()
	l.ops[op] = append(l.ops[op], d)
	l.mu.Unlock()
}

func percentile(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p+0.5) - 1
	if i < 0 {
		i = 0
	}
	if i >= len(sorted) {
		i = len(sorted) - 1
	}
	return float64(sorted[i].Microseconds()) / 1000
}

func (l *latencies) report(phase string, elapsed time.Duration, errors int64, extra map[string]any) map[string]any {
	var all []time.Duration
	byOp := map[string]any{}
	for op, ds := range l.ops {
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		byOp[op] = map[string]any{"count": len(ds), "p50_ms": percentile(ds, 0.5), "p99_ms": percentile(ds, 0.99)}
		all = append(all, ds...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	out := map[string]any{
		"phase": phase, "ops": len(all), "seconds": elapsed.Seconds(), "ops_per_sec": float64(len(all)) / elapsed.Seconds(),
		"p50_ms": percentile(all, 0.5), "p99_ms": percentile(all, 0.99), "errors": errors, "by_op": byOp,
	}
	for k, v := range extra {
		out[k] = v
	}
	return out
}

func (o benchOptions) objectKey(i int) string {
	return fmt.Sprintf("/registry/configmaps/%sns-%d/obj-%06d", o.run, i%benchNamespaces, i)
}

// writeLatencies stores every latency of a phase for the caller's exact percentiles.
func (l *latencies) write(path string) error {
	var buf []byte
	for _, ds := range l.ops {
		for _, d := range ds {
			buf = binary.LittleEndian.AppendUint32(buf, uint32(d.Microseconds()))
		}
	}
	return os.WriteFile(path, buf, 0o644)
}

func runBench(endpoint string, o benchOptions) error {
	clients := make([]*clientv3.Client, o.conns)
	for i := range clients {
		c, err := kubeClient(endpoint, nil)
		if err != nil {
			return err
		}
		defer c.Close()
		clients[i] = c
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	value := strings.Repeat("x", o.valueBytes)

	// The watch cache: prefix watches that follow everything.
	var watchEvents int64
	var watchWG sync.WaitGroup
	wctx, stopWatch := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer stopWatch()
	for i := 0; i < o.watchers; i++ {
		wch := clients[i%len(clients)].Watch(wctx, "/registry/", clientv3.WithPrefix(), clientv3.WithPrevKV(), clientv3.WithProgressNotify())
		watchWG.Add(1)
		go func() {
			defer watchWG.Done()
			for resp := range wch {
				atomic.AddInt64(&watchEvents, int64(len(resp.Events)))
			}
		}()
	}

	// Load phase: creates.
	lat := &latencies{ops: map[string][]time.Duration{}}
	var next, errors int64
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < o.clients; w++ {
		wg.Add(1)
		go func(cli *clientv3.Client) {
			defer wg.Done()
			for {
				i := int(atomic.AddInt64(&next, 1)) - 1
				if i >= o.objects {
					return
				}
				key := o.objectKey(i)
				t := time.Now()
				resp, err := cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", 0)).Then(clientv3.OpPut(key, value)).Commit()
				if err != nil || !resp.Succeeded {
					atomic.AddInt64(&errors, 1)
					continue
				}
				lat.add("create", time.Since(t))
			}
		}(clients[w%len(clients)])
	}
	wg.Wait()
	printJSON(lat.report("load", time.Since(start), errors, nil))
	if o.latOut != "" {
		if err := lat.write(o.latOut + ".load"); err != nil {
			return err
		}
	}

	// Mixed phase.
	lease, err := clients[0].Grant(ctx, 3660)
	if err != nil {
		return err
	}
	lat = &latencies{ops: map[string][]time.Duration{}}
	errors = 0
	var created int64 = int64(o.objects)
	var conflicts int64
	end := time.Now().Add(o.duration)
	start = time.Now()
	for w := 0; w < o.clients; w++ {
		wg.Add(1)
		go func(w int, cli *clientv3.Client) {
			defer wg.Done()
			rng := rand.New(rand.NewSource(int64(w) + 1))
			bad := func() { atomic.AddInt64(&errors, 1) }
			for n := 0; time.Now().Before(end); n++ {
				p := rng.Intn(100)
				t := time.Now()
				switch {
				case p < 30: // GuaranteedUpdate: read, then a txn guarded by that ModRevision
					key := o.objectKey(rng.Intn(o.objects))
					get, ok := getObject(ctx, cli, key, lat, t)
					if !ok {
						bad()
						continue
					}
					t = time.Now()
					resp, err := cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", get.Kvs[0].ModRevision)).
						Then(clientv3.OpPut(key, value)).Else(clientv3.OpGet(key)).Commit()
					if err != nil {
						bad()
						continue
					}
					if !resp.Succeeded {
						atomic.AddInt64(&conflicts, 1)
					}
					lat.add("update_txn", time.Since(t))
				case p < 40: // create
					i := int(atomic.AddInt64(&created, 1))
					key := fmt.Sprintf("/registry/pods/%sns-%d/pod-%07d", o.run, i%benchNamespaces, i)
					resp, err := cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", 0)).Then(clientv3.OpPut(key, value)).Commit()
					if err != nil || !resp.Succeeded {
						bad()
						continue
					}
					lat.add("create", time.Since(t))
				case p < 70: // get (a cache miss or a quorum read)
					if _, ok := getObject(ctx, cli, o.objectKey(rng.Intn(o.objects)), lat, t); !ok {
						bad()
					}
				case p < 80: // a list page of one namespace, then the next page at its revision
					prefix := fmt.Sprintf("/registry/configmaps/%sns-%d/", o.run, rng.Intn(benchNamespaces))
					end := clientv3.GetPrefixRangeEnd(prefix)
					first, err := cli.Get(ctx, prefix, clientv3.WithRange(end), clientv3.WithLimit(100))
					if err != nil || len(first.Kvs) == 0 {
						bad()
						continue
					}
					lat.add("list", time.Since(t))
					if first.More {
						t = time.Now()
						from := string(first.Kvs[len(first.Kvs)-1].Key) + "\x00"
						if _, err := cli.Get(ctx, from, clientv3.WithRange(end), clientv3.WithLimit(100), clientv3.WithRev(first.Header.Revision)); err != nil {
							bad()
							continue
						}
						lat.add("list", time.Since(t))
					}
				case p < 85: // object count
					if _, err := cli.Get(ctx, "/registry/configmaps/", clientv3.WithPrefix(), clientv3.WithCountOnly()); err != nil {
						bad()
						continue
					}
					lat.add("count", time.Since(t))
				default: // an event, with the shared lease
					key := fmt.Sprintf("/registry/events/%sns-%d/ev-%d-%d", o.run, w%benchNamespaces, w, n)
					resp, err := cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", 0)).
						Then(clientv3.OpPut(key, value[:min(256, len(value))], clientv3.WithLease(lease.ID))).Commit()
					if err != nil || !resp.Succeeded {
						bad()
						continue
					}
					lat.add("event", time.Since(t))
				}
			}
		}(w, clients[w%len(clients)])
	}
	wg.Wait()
	elapsed := time.Since(start)
	time.Sleep(200 * time.Millisecond)
	printJSON(lat.report("mixed", elapsed, errors, map[string]any{"conflicts": conflicts, "watch_events": atomic.LoadInt64(&watchEvents)}))
	if o.latOut != "" {
		if err := lat.write(o.latOut + ".mixed"); err != nil {
			return err
		}
	}
	stopWatch()
	watchWG.Wait()
	return nil
}

// getObject reads one object that must exist, and records the latency since t.
func getObject(ctx context.Context, cli *clientv3.Client, key string, lat *latencies, t time.Time) (*clientv3.GetResponse, bool) {
	get, err := cli.Get(ctx, key)
	if err != nil || len(get.Kvs) != 1 {
		return nil, false
	}
	lat.add("get", time.Since(t))
	return get, true
}

func printJSON(v map[string]any) {
	b, _ := json.Marshal(v)
	fmt.Println(string(b))
}
