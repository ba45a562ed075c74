package main

// The scenarios of issue 19: well-behaved grpc-go clients (kube-apiserver's
// settings), each on its own connection, all at once; none may see a GOAWAY.
// grpc-go sends a BDP ping as response data arrives, so a unary-only client
// pings once per response: a server that counts those as strikes tears the
// connection down every few requests (grpc-go reconnects, and doubles the
// client's keepalive time each time).

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.etcd.io/etcd/clientv3"
)

type scenario struct {
	name string
	run  func(ctx context.Context, cli *clientv3.Client) (requests, errors int, info map[string]any)
}

func goAwayScenarios(endpoint string, burst int, length time.Duration) []Result {
	scenarios := []scenario{
		{"goaway_unary_burst", func(ctx context.Context, cli *clientv3.Client) (int, int, map[string]any) {
			// Requests in a row, no stream open.
			errs := 0
			for i := 0; i < burst; i++ {
				var err error
				if i%2 == 0 {
					_, err = cli.Put(ctx, "/registry/burst/k", fmt.Sprint(i))
				} else {
					_, err = cli.Get(ctx, "/registry/burst/k")
				}
				if err != nil {
					errs++
				}
			}
			return burst, errs, nil
		}},
		{"goaway_health_get", func(ctx context.Context, cli *clientv3.Client) (int, int, map[string]any) {
			// The apiserver's etcd health check: a Get of /registry/health once a second.
			return every(ctx, time.Second, length, func(ctx context.Context) error {
				_, err := cli.Get(ctx, "/registry/health")
				return err
			})
		}},
		{"goaway_create_txn", func(ctx context.Context, cli *clientv3.Client) (int, int, map[string]any) {
			// A create txn every 250 ms on a unary-only client (a resource without watch cache).
			n := 0
			return every(ctx, 250*time.Millisecond, length, func(ctx context.Context) error {
				n++
				key := fmt.Sprintf("/registry/events/default/e-%d", n)
				_, err := cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", 0)).Then(clientv3.OpPut(key, "event")).Commit()
				return err
			})
		}},
		{"goaway_watch_and_get", func(ctx context.Context, cli *clientv3.Client) (int, int, map[string]any) {
			// A long watch with idle gaps, and a Get a second on the same connection.
			wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
			defer cancel()
			wch := cli.Watch(wctx, "/registry/watched/", clientv3.WithPrefix(), clientv3.WithPrevKV())
			events := 0
			done := make(chan struct{})
			go func() {
				defer close(done)
				for resp := range wch {
					events += len(resp.Events)
				}
			}()
			puts := 0
			requests, errs, _ := every(ctx, time.Second, length, func(ctx context.Context) error {
				if _, err := cli.Get(ctx, "/registry/watched/a"); err != nil {
					return err
				}
				puts++
				if puts%5 != 0 {
					return nil
				}
				_, err := cli.Put(ctx, "/registry/watched/a", fmt.Sprint(puts))
				return err
			})
			time.Sleep(500 * time.Millisecond)
			cancel()
			<-done
			if events != puts/5 {
				errs++
			}
			return requests, errs, map[string]any{"events": events}
		}},
	}
	results := make([]Result, len(scenarios))
	var wg sync.WaitGroup
	for i, s := range scenarios {
		wg.Add(1)
		go func(i int, s scenario) {
			defer wg.Done()
			results[i] = runScenario(endpoint, s)
		}(i, s)
	}
	wg.Wait()
	return results
}

func runScenario(endpoint string, s scenario) Result {
	stats := &FrameStats{}
	cli, err := kubeClient(endpoint, stats)
	if err != nil {
		return Result{Check: s.name, Error: err.Error()}
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	requests, errs, info := s.run(ctx, cli)
	conns, goaways, serverPings, clientPings := stats.snapshot()
	if info == nil {
		info = map[string]any{}
	}
	info["requests"] = requests
	info["client_pings"] = clientPings
	info["server_pings"] = serverPings
	info["seconds"] = time.Since(start).Seconds()
	return Result{
		Check:  s.name,
		Pass:   len(goaways) == 0 && errs == 0 && conns == 1,
		Result: map[string]any{"goaways": goaways, "connections": conns, "errors": errs},
		Info:   info,
	}
}

// every calls f once per period for length; it returns the calls and the failures.
func every(ctx context.Context, period, length time.Duration, f func(context.Context) error) (int, int, map[string]any) {
	calls, errs := 0, 0
	t := time.NewTicker(period)
	defer t.Stop()
	end := time.Now().Add(length)
	for time.Now().Before(end) {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		if f(rctx) != nil {
			errs++
		}
		cancel()
		calls++
		<-t.C
	}
	return calls, errs, nil
}
