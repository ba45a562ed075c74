package main

// kube-apiserver's storage patterns (k8s.io/apiserver/pkg/storage/etcd3),
// written with the same clientv3 calls. Revisions are recorded relative to
// a revision the check itself saw, so that results compare across servers.

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/clientv3"
	"go.etcd.io/etcd/mvcc/mvccpb"
)

type patternCheck func(ctx context.Context, cli *clientv3.Client) []Result

var patternChecks = []patternCheck{
	checkRequireLeaderWatch,
	checkPaginatedList,
	checkCountOnly,
	checkGuardedTxns,
	checkLeases,
	checkCompaction,
	checkLargeValues,
	checkProgress,
	checkStatus,
}

// Status per endpoint: the apiserver polls dbSize for its metric and reads
// version to decide whether to use RequestProgress (>= 3.4.25, not 3.5.0-3.5.7).
func checkStatus(ctx context.Context, cli *clientv3.Client) []Result {
	const name = "status_endpoint"
	resp, err := cli.Status(ctx, cli.Endpoints()[0])
	if err != nil {
		return fail(name, err)
	}
	res := map[string]any{"db_size_positive": resp.DbSize > 0, "leader_is_self": resp.Leader == resp.Header.MemberId, "raft_index_positive": resp.RaftIndex > 0}
	return []Result{{Check: name, Pass: resp.DbSize > 0 && resp.Leader == resp.Header.MemberId && resp.RaftIndex > 0, Result: res,
		Info: map[string]any{"version": resp.Version}}}
}

func fail(name string, err error) []Result {
	return []Result{{Check: name, Error: errText(err)}}
}

func eventsOf(resp clientv3.WatchResponse, base int64) []map[string]any {
	var out []map[string]any
	for _, ev := range resp.Events {
		e := map[string]any{"type": ev.Type.String(), "key": string(ev.Kv.Key), "value": string(ev.Kv.Value), "mod_rev": ev.Kv.ModRevision - base}
		if ev.PrevKv != nil {
			e["prev_value"] = string(ev.PrevKv.Value)
		}
		out = append(out, e)
	}
	return out
}

// A watch with WithRequireLeader and WithPrevKV (the watch cache's reflector)
// sees put, update and delete with their previous values.
func checkRequireLeaderWatch(ctx context.Context, cli *clientv3.Client) []Result {
	const name = "require_leader_watch"
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	wch := cli.Watch(wctx, "/registry/rl/", clientv3.WithPrefix(), clientv3.WithPrevKV(), clientv3.WithCreatedNotify())
	created := <-wch
	if !created.Created {
		return fail(name, fmt.Errorf("first response is not created: %+v", created))
	}
	base := created.Header.Revision
	for _, op := range []clientv3.Op{clientv3.OpPut("/registry/rl/a", "1"), clientv3.OpPut("/registry/rl/a", "2"), clientv3.OpDelete("/registry/rl/a")} {
		if _, err := cli.Do(ctx, op); err != nil {
			return fail(name, err)
		}
	}
	var events []map[string]any
	for len(events) < 3 {
		resp, ok := <-wch
		if !ok || resp.Err() != nil {
			return fail(name, fmt.Errorf("watch ended: %v", resp.Err()))
		}
		events = append(events, eventsOf(resp, base)...)
	}
	get, err := cli.Get(clientv3.WithRequireLeader(ctx), "/registry/rl/", clientv3.WithPrefix())
	if err != nil {
		return fail(name, err)
	}
	pass := len(events) == 3 && events[1]["prev_value"] == "1" && events[2]["type"] == "DELETE" && len(get.Kvs) == 0
	return []Result{{Check: name, Pass: pass, Result: map[string]any{"events": events, "get_after": len(get.Kvs)}}}
}

// The apiserver's list: pages of --limit keys at the revision of the first
// page (WithRev), the next page starting after the last key; writes made
// between pages must not show.
func checkPaginatedList(ctx context.Context, cli *clientv3.Client) []Result {
	const name = "list_paginated"
	const prefix = "/registry/pods/default/"
	for i := 0; i < 25; i++ {
		if _, err := cli.Put(ctx, fmt.Sprintf("%spod-%02d", prefix, i), fmt.Sprintf("v1-%d", i)); err != nil {
			return fail(name, err)
		}
	}
	end := clientv3.GetPrefixRangeEnd(prefix)
	var pages []map[string]any
	key, rev := prefix, int64(0)
	var all []string
	for n := 0; n < 10; n++ {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(10)}
		if rev > 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		resp, err := cli.Get(ctx, key, opts...)
		if err != nil {
			return fail(name, err)
		}
		if rev == 0 {
			rev = resp.Header.Revision
			// Written between pages: must not be seen at rev.
			for _, op := range []clientv3.Op{clientv3.OpPut(prefix+"pod-15", "v2"), clientv3.OpDelete(prefix + "pod-20"), clientv3.OpPut(prefix+"pod-99", "new")} {
				if _, err := cli.Do(ctx, op); err != nil {
					return fail(name, err)
				}
			}
		}
		var keys []string
		for _, kv := range resp.Kvs {
			keys = append(keys, strings.TrimPrefix(string(kv.Key), prefix)+"="+string(kv.Value))
		}
		all = append(all, keys...)
		pages = append(pages, map[string]any{"keys": keys, "more": resp.More, "count": resp.Count, "header_rev": resp.Header.Revision - rev})
		if !resp.More {
			break
		}
		key = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
	now, err := cli.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return fail(name, err)
	}
	_, futureErr := cli.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+100))
	pass := len(all) == 25 && all[15] == "pod-15=v1-15" && all[20] == "pod-20=v1-20" && len(pages) == 3 && len(now.Kvs) == 25
	return []Result{{Check: name, Pass: pass && futureErr != nil, Result: map[string]any{
		"pages": pages, "keys_now": len(now.Kvs), "future_rev_err": errText(futureErr)}}}
}

// Count (the apiserver's object-count metric): WithCountOnly over a prefix.
func checkCountOnly(ctx context.Context, cli *clientv3.Client) []Result {
	const name = "count_only"
	const prefix = "/registry/configmaps/"
	for i := 0; i < 7; i++ {
		if _, err := cli.Put(ctx, fmt.Sprintf("%sns/cm-%d", prefix, i), "x"); err != nil {
			return fail(name, err)
		}
	}
	resp, err := cli.Get(ctx, prefix, clientv3.WithRange(clientv3.GetPrefixRangeEnd(prefix)), clientv3.WithCountOnly())
	if err != nil {
		return fail(name, err)
	}
	old, err := cli.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithCountOnly(), clientv3.WithRev(resp.Header.Revision-3))
	if err != nil {
		return fail(name, err)
	}
	res := map[string]any{"count": resp.Count, "kvs": len(resp.Kvs), "more": resp.More, "count_3_revs_ago": old.Count, "kvs_3_revs_ago": len(old.Kvs)}
	return []Result{{Check: name, Pass: resp.Count == 7 && len(resp.Kvs) == 0 && old.Count == 4, Result: res}}
}

func txnSummary(resp *clientv3.TxnResponse, base int64) map[string]any {
	out := map[string]any{"succeeded": resp.Succeeded, "header_rev": resp.Header.Revision - base}
	var ops []string
	for _, r := range resp.Responses {
		switch {
		case r.GetResponseRange() != nil:
			rr := r.GetResponseRange()
			var kvs []string
			for _, kv := range rr.Kvs {
				kvs = append(kvs, fmt.Sprintf("%s=%s@%d", kv.Key, kv.Value, kv.ModRevision-base))
			}
			ops = append(ops, "range:"+strings.Join(kvs, ","))
		case r.GetResponsePut() != nil:
			ops = append(ops, "put")
		case r.GetResponseDeleteRange() != nil:
			d := r.GetResponseDeleteRange()
			var prev []string
			for _, kv := range d.PrevKvs {
				prev = append(prev, string(kv.Value))
			}
			ops = append(ops, fmt.Sprintf("delete:%d:%s", d.Deleted, strings.Join(prev, ",")))
		}
	}
	out["ops"] = ops
	return out
}

// Create, GuaranteedUpdate and conditional delete: txns guarded by ModRevision.
func checkGuardedTxns(ctx context.Context, cli *clientv3.Client) []Result {
	const name = "guarded_txns"
	key := "/registry/secrets/default/s1"
	base, err := cli.Get(ctx, "anything")
	if err != nil {
		return fail(name, err)
	}
	b := base.Header.Revision
	create := func(v string) (*clientv3.TxnResponse, error) {
		return cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", 0)).Then(clientv3.OpPut(key, v)).Commit()
	}
	update := func(rev int64, v string) (*clientv3.TxnResponse, error) {
		return cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).Then(clientv3.OpPut(key, v)).Else(clientv3.OpGet(key)).Commit()
	}
	remove := func(rev int64) (*clientv3.TxnResponse, error) {
		return cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).Then(clientv3.OpDelete(key, clientv3.WithPrevKV())).Else(clientv3.OpGet(key)).Commit()
	}
	var steps []map[string]any
	var all []*clientv3.TxnResponse
	record := func(r *clientv3.TxnResponse, err error) error {
		if err != nil {
			return err
		}
		steps = append(steps, txnSummary(r, b))
		all = append(all, r)
		return nil
	}
	if err := record(create("a")); err != nil {
		return fail(name, err)
	}
	createdRev := all[0].Header.Revision
	for _, step := range []func() (*clientv3.TxnResponse, error){
		func() (*clientv3.TxnResponse, error) { return create("again") },             // exists: fails
		func() (*clientv3.TxnResponse, error) { return update(createdRev, "b") },     // fresh: applies
		func() (*clientv3.TxnResponse, error) { return update(createdRev, "stale") }, // stale: else returns current
		func() (*clientv3.TxnResponse, error) { return remove(createdRev) },          // stale delete: fails
		func() (*clientv3.TxnResponse, error) { return remove(createdRev + 1) },      // fresh delete
	} {
		if err := record(step()); err != nil {
			return fail(name, err)
		}
	}
	want := []bool{true, false, true, false, false, true}
	pass := len(all) == len(want)
	for i := range all {
		pass = pass && all[i].Succeeded == want[i]
	}
	return []Result{{Check: name, Pass: pass, Result: map[string]any{"steps": steps}}}
}

// The apiserver's lease manager: one lease granted and reused for many keys
// (events), TimeToLive with attached keys, revoke takes the keys with it.
func checkLeases(ctx context.Context, cli *clientv3.Client) []Result {
	const name = "lease_reuse"
	lease, err := cli.Grant(ctx, 3660)
	if err != nil {
		return fail(name, err)
	}
	var keys []string
	for i := 0; i < 5; i++ {
		k := fmt.Sprintf("/registry/events/default/ev-%d", i)
		keys = append(keys, k)
		if _, err := cli.Put(ctx, k, "event", clientv3.WithLease(lease.ID)); err != nil {
			return fail(name, err)
		}
	}
	ttl, err := cli.TimeToLive(ctx, lease.ID, clientv3.WithAttachedKeys())
	if err != nil {
		return fail(name, err)
	}
	var attached []string
	for _, k := range ttl.Keys {
		attached = append(attached, string(k))
	}
	sort.Strings(attached)
	leases, err := cli.Leases(ctx)
	if err != nil {
		return fail(name, err)
	}
	if _, err := cli.Revoke(ctx, lease.ID); err != nil {
		return fail(name, err)
	}
	after, err := cli.Get(ctx, "/registry/events/default/ev-", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return fail(name, err)
	}
	_, putErr := cli.Put(ctx, "/registry/events/default/late", "x", clientv3.WithLease(lease.ID))
	_, revokeErr := cli.Revoke(ctx, lease.ID)
	gone, err := cli.TimeToLive(ctx, lease.ID)
	if err != nil {
		return fail(name, err)
	}
	ttlOK := ttl.TTL >= 3655 && ttl.TTL <= 3660
	res := map[string]any{
		"granted_ttl": lease.TTL, "ttl_plausible": ttlOK, "attached": attached, "leases_listed": len(leases.Leases),
		"keys_after_revoke": after.Count, "put_on_revoked": errText(putErr), "revoke_again": errText(revokeErr),
		"ttl_after_revoke": gone.TTL,
	}
	pass := lease.TTL == 3660 && ttlOK && len(attached) == 5 && after.Count == 0 && putErr != nil && gone.TTL == -1
	return []Result{{Check: name, Pass: pass, Result: res}}
}

// The apiserver's compactor: a CAS on compact_rev_key's version, then
// Compact; a second compactor with the old version loses. Then the errors of
// reading and watching below the compacted revision.
func checkCompaction(ctx context.Context, cli *clientv3.Client) []Result {
	const name = "compaction"
	const compactRevKey = "compact_rev_key"
	compact := func(t, rev int64) (int64, *clientv3.TxnResponse, error) {
		resp, err := cli.Txn(ctx).If(clientv3.Compare(clientv3.Version(compactRevKey), "=", t)).
			Then(clientv3.OpPut(compactRevKey, fmt.Sprint(rev))).Else(clientv3.OpGet(compactRevKey)).Commit()
		if err != nil {
			return 0, nil, err
		}
		if !resp.Succeeded {
			return resp.Responses[0].GetResponseRange().Kvs[0].Version, resp, nil
		}
		if rev > 0 {
			if _, err := cli.Compact(ctx, rev); err != nil {
				return t + 1, resp, err
			}
		}
		return t + 1, resp, nil
	}
	t1, first, err := compact(0, 0)
	if err != nil {
		return fail(name, err)
	}
	for i := 0; i < 5; i++ {
		if _, err := cli.Put(ctx, "/registry/compacted/k", fmt.Sprint(i)); err != nil {
			return fail(name, err)
		}
	}
	base := first.Header.Revision
	target := base + 3
	t2, second, err := compact(t1, target)
	if err != nil {
		return fail(name, err)
	}
	t3, loser, err := compact(t1, target) // another apiserver with the old version
	if err != nil {
		return fail(name, err)
	}
	_, againErr := cli.Compact(ctx, target)
	_, belowErr := cli.Get(ctx, "/registry/compacted/k", clientv3.WithRev(target-1))
	at, atErr := cli.Get(ctx, "/registry/compacted/k", clientv3.WithRev(target))
	_, futureErr := cli.Compact(ctx, target+100)

	// A watch from below the compacted revision is canceled with it.
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	wresp := <-cli.Watch(wctx, "/registry/compacted/k", clientv3.WithRev(target-1))
	watchRes := map[string]any{"canceled": wresp.Canceled, "compact_revision": wresp.CompactRevision - base, "err": errText(wresp.Err()), "events": len(wresp.Events)}
	// From the compacted revision itself it is fine.
	wresp2 := <-cli.Watch(wctx, "/registry/compacted/k", clientv3.WithRev(target))
	watchAt := map[string]any{"canceled": wresp2.Canceled, "events": eventsOf(wresp2, base)}

	atValue := ""
	if atErr == nil && len(at.Kvs) == 1 {
		atValue = string(at.Kvs[0].Value)
	}
	res := map[string]any{
		"versions": []int64{t1, t2, t3}, "first_succeeded": first.Succeeded, "second_succeeded": second.Succeeded,
		"loser_succeeded": loser.Succeeded, "compact_again": errText(againErr), "get_below": errText(belowErr),
		"get_at_value": atValue, "get_at_err": errText(atErr), "compact_future": errText(futureErr),
		"watch_below": watchRes, "watch_at": watchAt,
	}
	pass := first.Succeeded && second.Succeeded && !loser.Succeeded && t3 == 2 && againErr != nil && belowErr != nil &&
		atErr == nil && futureErr != nil && wresp.Canceled && wresp.CompactRevision == target && wresp.Err() != nil && !wresp2.Canceled
	return []Result{{Check: name, Pass: pass, Result: res}}
}

// --max-request-bytes (default 1.5 MiB): an object just under it is
// accepted and read back; one just over it is refused with etcd's error; one
// over the gRPC receive limit (the limit + 512 KiB) by gRPC itself.
func checkLargeValues(ctx context.Context, cli *clientv3.Client) []Result {
	const name = "large_values"
	const limit = 1536 * 1024
	under := strings.Repeat("u", limit-1024)
	_, underErr := cli.Put(ctx, "/registry/big/under", under)
	got, getErr := cli.Get(ctx, "/registry/big/under")
	readBack := getErr == nil && len(got.Kvs) == 1 && len(got.Kvs[0].Value) == len(under)
	_, overErr := cli.Put(ctx, "/registry/big/over", strings.Repeat("o", limit+1024))
	_, wayOverErr := cli.Put(ctx, "/registry/big/way-over", strings.Repeat("w", limit+600*1024))
	_, txnErr := cli.Txn(ctx).Then(clientv3.OpPut("/registry/big/txn", strings.Repeat("t", limit+1024))).Commit()
	res := map[string]any{"under": errText(underErr), "read_back": readBack, "over": errText(overErr), "way_over": errText(wayOverErr), "txn_over": errText(txnErr)}
	pass := underErr == nil && readBack && overErr != nil && wayOverErr != nil && txnErr != nil
	return []Result{{Check: name, Pass: pass, Result: res}}
}

// WithProgressNotify + RequestProgress while writers race: a progress
// notification is never behind an event already delivered, and no event at
// or below a notified progress revision comes after it. (etcd 3.4.23 sends
// the progress on a separate queue and fails both; see etcd #15220.)
func checkProgress(ctx context.Context, cli *clientv3.Client) []Result {
	const prefix = "/registry/leases/progress/"
	const writers, perWriter = 4, 150
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	start, err := cli.Get(ctx, "anything")
	if err != nil {
		return fail("progress_request", err)
	}
	base := start.Header.Revision
	wch := cli.Watch(wctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(base+1), clientv3.WithPrevKV(), clientv3.WithProgressNotify())

	var wg sync.WaitGroup
	writeErrs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < perWriter; i++ {
				if _, err := cli.Put(ctx, fmt.Sprintf("%s%d-%d", prefix, w, i), "v"); err != nil {
					writeErrs <- err
					return
				}
			}
		}(w)
	}
	stop := make(chan struct{})
	requested := 0
	var reqWG sync.WaitGroup
	reqWG.Add(1)
	go func() {
		defer reqWG.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
				if cli.RequestProgress(wctx) == nil {
					requested++
				}
			}
		}
	}()
	wg.Wait()
	close(stop)
	reqWG.Wait()
	close(writeErrs)
	if err := <-writeErrs; err != nil {
		return fail("progress_request", err)
	}
	last, err := cli.Get(ctx, "anything")
	if err != nil {
		return fail("progress_request", err)
	}
	lastRev := last.Header.Revision

	events, progresses := 0, 0
	var maxEvent, maxProgress int64
	behind, atOrBelow := 0, 0
	finalProgress := int64(0)
	askedFinal := false
	deadline := time.After(20 * time.Second)
	for finalProgress == 0 {
		select {
		case resp, ok := <-wch:
			if !ok || resp.Err() != nil {
				return fail("progress_request", fmt.Errorf("watch ended: %v", resp.Err()))
			}
			if resp.IsProgressNotify() {
				progresses++
				r := resp.Header.Revision
				if r < maxEvent {
					behind++
				}
				if r > maxProgress {
					maxProgress = r
				}
				if askedFinal && events == writers*perWriter {
					finalProgress = r
				}
				continue
			}
			for _, ev := range resp.Events {
				events++
				if ev.Kv.ModRevision <= maxProgress {
					atOrBelow++
				}
				if ev.Kv.ModRevision > maxEvent {
					maxEvent = ev.Kv.ModRevision
				}
				if ev.Type != mvccpb.PUT {
					return fail("progress_request", fmt.Errorf("unexpected %v event", ev.Type))
				}
			}
			if events == writers*perWriter && !askedFinal {
				// Everything delivered: the next progress must be at the last revision.
				askedFinal = true
				if err := cli.RequestProgress(wctx); err != nil {
					return fail("progress_request", err)
				}
			}
		case <-time.After(500 * time.Millisecond):
			if askedFinal || events == writers*perWriter {
				askedFinal = true
				_ = cli.RequestProgress(wctx)
			}
		case <-deadline:
			return fail("progress_request", fmt.Errorf("%d of %d events, final progress %d", events, writers*perWriter, finalProgress))
		}
	}
	info := map[string]any{"progress_requests": requested, "progress_notifications": progresses}
	return []Result{
		{Check: "progress_request", Pass: events == writers*perWriter && finalProgress == lastRev,
			Result: map[string]any{"events": events, "final_progress_at_last_rev": finalProgress == lastRev}, Info: info},
		{Check: "progress_not_behind_delivered_event", Pass: behind == 0 && progresses > 1, Result: map[string]any{"violations": behind}, Info: info},
		{Check: "no_event_at_or_below_progress", Pass: atOrBelow == 0 && progresses > 1, Result: map[string]any{"violations": atOrBelow}, Info: info},
	}
}
