// clientv3_check: etcd's own Go client (clientv3 3.4, Debian's sources, GOPATH
// build) set up as kube-apiserver sets it up, against one endpoint. It prints
// one JSON object per check on stdout; test/e2e/clientv3_kube.test.ts runs it
// against tskv and against etcd 3.4 and compares the two.
//
//	clientv3_check -endpoint 127.0.0.1:2379 [-only raw,patterns,goaway] [-burst 300] [-seconds 25]
//	clientv3_check -endpoint 127.0.0.1:2379 -mode bench [-duration 10s] [-clients 64] ...
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"go.etcd.io/etcd/clientv3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
)

// Result is one line of output. Result holds what must be the same on tskv
// and etcd; Info holds what may differ (timings, counts of pings).
type Result struct {
	Check  string         `json:"check"`
	Pass   bool           `json:"pass"`
	Result map[string]any `json:"result,omitempty"`
	Info   map[string]any `json:"info,omitempty"`
	Error  string         `json:"error,omitempty"`
}

func emit(r Result) {
	b, err := json.Marshal(r)
	if err != nil {
		panic(err)
	}
	fmt.Println(string(b))
}

// kubeClient is a client configured as kube-apiserver configures its etcd3
// storage client (k8s.io/apiserver storagebackend/factory/etcd3.go): dial
// timeout 20 s, keepalive time 30 s and timeout 10 s, no pings without a
// stream, a blocking dial. stats, when given, counts the frames on the wire.
func kubeClient(endpoint string, stats *FrameStats, extra ...grpc.DialOption) (*clientv3.Client, error) {
	opts := append([]grpc.DialOption{grpc.WithBlock()}, extra...)
	if stats != nil {
		opts = append(opts, grpc.WithContextDialer(stats.Dial))
	}
	return clientv3.New(clientv3.Config{
		Endpoints:            []string{endpoint},
		DialTimeout:          20 * time.Second,
		DialKeepAliveTime:    30 * time.Second,
		DialKeepAliveTimeout: 10 * time.Second,
		PermitWithoutStream:  false,
		MaxCallSendMsgSize:   4 << 20,
		DialOptions:          opts,
	})
}

// errText is how a check records an error: the gRPC code and the message.
func errText(err error) string {
	if err == nil {
		return ""
	}
	return status.Code(err).String() + ": " + err.Error()
}

func main() {
	endpoint := flag.String("endpoint", "127.0.0.1:2379", "host:port of the server")
	mode := flag.String("mode", "check", "check or bench")
	only := flag.String("only", "raw,patterns,goaway", "groups of checks to run: raw, patterns, goaway, keepalive (the last for a server with short --grpc-keepalive-*)")
	burst := flag.Int("burst", 300, "unary requests in a row in goaway_unary_burst")
	seconds := flag.Int("seconds", 25, "length of the timed goaway scenarios")
	spacing := flag.Duration("ping-spacing", 300*time.Millisecond, "keepalive: time between pings")
	var bo benchOptions
	flag.DurationVar(&bo.duration, "duration", 10*time.Second, "bench: length of the mixed phase")
	flag.IntVar(&bo.clients, "clients", 64, "bench: concurrent workers")
	flag.IntVar(&bo.conns, "conns", 4, "bench: clients (connections) the workers share")
	flag.IntVar(&bo.objects, "objects", 2000, "bench: objects created in the load phase")
	flag.IntVar(&bo.valueBytes, "value-bytes", 1024, "bench: size of an object")
	flag.IntVar(&bo.watchers, "watchers", 4, "bench: prefix watchers (watch cache) open during the run")
	flag.StringVar(&bo.run, "run", "", "bench: tag in every key of this run")
	flag.StringVar(&bo.latOut, "lat-out", "", "bench: write every latency to <path>.load and <path>.mixed")
	flag.Parse()

	if *mode == "bench" {
		if err := runBench(*endpoint, bo); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	groups := map[string]bool{}
	for _, g := range strings.Split(*only, ",") {
		groups[g] = true
	}
	if groups["raw"] {
		for _, r := range rawPingChecks(*endpoint) {
			emit(r)
		}
	}
	if groups["keepalive"] {
		for _, r := range keepaliveChecks(*endpoint, *spacing) {
			emit(r)
		}
	}
	if groups["patterns"] {
		cli, err := kubeClient(*endpoint, nil)
		if err != nil {
			emit(Result{Check: "connect", Error: err.Error()})
			os.Exit(1)
		}
		for _, check := range patternChecks {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			for _, r := range check(ctx, cli) {
				emit(r)
			}
			cancel()
		}
		cli.Close()
	}
	if groups["goaway"] {
		for _, r := range goAwayScenarios(*endpoint, *burst, time.Duration(*seconds)*time.Second) {
			emit(r)
		}
	}
}
