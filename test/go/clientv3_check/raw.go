package main

// Raw HTTP/2 checks of the server's ping policy (grpc-go's keepalive
// enforcement), frame by frame with x/net/http2's Framer: how many pings in a
// row earn the GOAWAY, with and without a stream open, and that a ping right
// after a response is never held against the client.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

type pingSeen struct {
	ack bool
	n   uint64
}

type goAwaySeen struct{ text string }

type headersSeen struct {
	stream     uint32
	ended      bool
	status     string
	grpcStatus string
}

type rawConn struct {
	conn   net.Conn
	fr     *http2.Framer
	wmu    sync.Mutex
	frames chan any
	closed chan struct{}
	hbuf   bytes.Buffer
	henc   *hpack.Encoder
	// autoAck answers the server's pings; serverPings counts them.
	autoAck     bool
	serverPings int32
}

func dialRaw(addr string) (*rawConn, error) { return dialRawWith(addr, false) }

func dialRawWith(addr string, autoAck bool) (*rawConn, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	if _, err := c.Write([]byte(http2.ClientPreface)); err != nil {
		c.Close()
		return nil, err
	}
	r := &rawConn{conn: c, fr: http2.NewFramer(c, c), frames: make(chan any, 64), closed: make(chan struct{}), autoAck: autoAck}
	r.henc = hpack.NewEncoder(&r.hbuf)
	r.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	if err := r.write(func() error { return r.fr.WriteSettings() }); err != nil {
		c.Close()
		return nil, err
	}
	go r.readLoop()
	return r, nil
}

func (r *rawConn) write(f func() error) error {
	r.wmu.Lock()
	defer r.wmu.Unlock()
	return f()
}

func (r *rawConn) readLoop() {
	defer close(r.closed)
	for {
		f, err := r.fr.ReadFrame()
		if err != nil {
			return
		}
		if s, ok := f.(*http2.SettingsFrame); ok && !s.IsAck() {
			_ = r.write(func() error { return r.fr.WriteSettingsAck() })
			continue
		}
		// The framer reuses its buffers: copy what the checks look at.
		switch f := f.(type) {
		case *http2.PingFrame:
			if !f.IsAck() {
				atomic.AddInt32(&r.serverPings, 1)
				if r.autoAck {
					data := f.Data
					_ = r.write(func() error { return r.fr.WritePing(true, data) })
				}
				continue
			}
			r.frames <- pingSeen{ack: true, n: binary.BigEndian.Uint64(f.Data[:])}
		case *http2.GoAwayFrame:
			r.frames <- goAwaySeen{text: codeName(uint32(f.ErrCode)) + " " + string(f.DebugData())}
		case *http2.MetaHeadersFrame:
			h := headersSeen{stream: f.StreamID, ended: f.StreamEnded(), status: f.PseudoValue("status")}
			for _, hf := range f.RegularFields() {
				if hf.Name == "grpc-status" {
					h.grpcStatus = hf.Value
				}
			}
			r.frames <- h
		}
	}
}

// awaitPingAck waits for the ACK of ping n; a GOAWAY first is returned as goaway.
func (r *rawConn) awaitPingAck(n uint64) (goaway string, err error) {
	deadline := time.After(5 * time.Second)
	for {
		select {
		case f := <-r.frames:
			switch f := f.(type) {
			case pingSeen:
				if f.ack && f.n == n {
					return "", nil
				}
			case goAwaySeen:
				return f.text, nil
			}
		case <-r.closed:
			// Both may be ready and select picks at random: frames read before the close come first.
			if g := r.pendingGoAway(); g != "" {
				return g, nil
			}
			return "", errors.New("connection closed without GOAWAY")
		case <-deadline:
			return "", fmt.Errorf("no ack for ping %d", n)
		}
	}
}

// pingAndWait sends ping n and waits for its ACK; a GOAWAY first is returned as goaway.
func (r *rawConn) pingAndWait(n uint64) (goaway string, err error) {
	if err := r.ping(n); err != nil {
		return "", err
	}
	return r.awaitPingAck(n)
}

func (r *rawConn) ping(n uint64) error {
	var data [8]byte
	binary.BigEndian.PutUint64(data[:], n)
	return r.write(func() error { return r.fr.WritePing(false, data) })
}

// openStream sends the request headers of a gRPC call (no END_STREAM).
func (r *rawConn) openStream(id uint32, path string) error {
	return r.write(func() error {
		r.hbuf.Reset()
		for _, h := range [][2]string{{":method", "POST"}, {":scheme", "http"}, {":path", path}, {":authority", "localhost"},
			{"content-type", "application/grpc"}, {"te", "trailers"}} {
			_ = r.henc.WriteField(hpack.HeaderField{Name: h[0], Value: h[1]})
		}
		return r.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: r.hbuf.Bytes(), EndHeaders: true})
	})
}

// unaryRange runs one KV.Range for key "raw" on stream id and waits for its trailers.
func (r *rawConn) unaryRange(id uint32) error {
	if err := r.openStream(id, "/etcdserverpb.KV/Range"); err != nil {
		return err
	}
	msg := []byte{0, 0, 0, 0, 5, 0x0a, 0x03, 'r', 'a', 'w'}
	if err := r.write(func() error { return r.fr.WriteData(id, true, msg) }); err != nil {
		return err
	}
	deadline := time.After(5 * time.Second)
	for {
		select {
		case f := <-r.frames:
			if h, ok := f.(headersSeen); ok && h.stream == id && h.ended {
				if h.status != "" && h.status != "200" {
					return fmt.Errorf(":status %s", h.status)
				}
				if h.grpcStatus != "0" {
					return fmt.Errorf("grpc-status %q", h.grpcStatus)
				}
				return nil
			}
			if g, ok := f.(goAwaySeen); ok {
				return fmt.Errorf("GOAWAY %s", g.text)
			}
		case <-r.closed:
			return errors.New("connection closed")
		case <-deadline:
			return errors.New("no response")
		}
	}
}

// pingsUntilGoAway sends up to max pings, each after the previous one's ACK
// and a short pause in which a GOAWAY would show; it returns how many pings
// were sent when the GOAWAY came (grpc-go acks the ping that earns it, then
// sends the GOAWAY; the ACK may not make it before the connection closes).
func (r *rawConn) pingsUntilGoAway(max int) (sent int, goaway string, err error) {
	for n := 1; n <= max; n++ {
		g, err := r.pingAndWait(uint64(n))
		if err != nil {
			return n, "", err
		}
		if g == "" {
			g = r.goAwayWithin(100 * time.Millisecond)
		}
		if g != "" {
			return n, g, nil
		}
	}
	return max, "", nil
}

// pendingGoAway returns a GOAWAY among the frames already read (after the connection closed).
func (r *rawConn) pendingGoAway() string {
	for {
		select {
		case f := <-r.frames:
			if g, ok := f.(goAwaySeen); ok {
				return g.text
			}
		default:
			return ""
		}
	}
}

func (r *rawConn) goAwayWithin(d time.Duration) string {
	deadline := time.After(d)
	for {
		select {
		case f := <-r.frames:
			if g, ok := f.(goAwaySeen); ok {
				return g.text
			}
		case <-r.closed:
			return r.pendingGoAway()
		case <-deadline:
			return ""
		}
	}
}

// closedWithin reports whether the server closes the connection within d.
func (r *rawConn) closedWithin(d time.Duration) bool {
	select {
	case <-r.closed:
		return true
	case <-time.After(d):
		return false
	}
}

func rawPingChecks(addr string) []Result {
	var out []Result
	// No stream open: grpc-go allows no keepalive at all without streams
	// (PermitWithoutStream false), so every ping after the first is a strike.
	out = append(out, rawCheck("ping_flood_idle", addr, func(r *rawConn) (map[string]any, bool, error) {
		sent, g, err := r.pingsUntilGoAway(8)
		if err != nil {
			return nil, false, err
		}
		closed := g != "" && r.closedWithin(3*time.Second)
		return map[string]any{"pings_until_goaway": sent, "goaway": g, "closed": closed}, g == "ENHANCE_YOUR_CALM too_many_pings" && closed, nil
	}))
	// A stream open (a Watch call, no message yet): pings closer than the
	// minimum time are strikes too.
	out = append(out, rawCheck("ping_flood_open_stream", addr, func(r *rawConn) (map[string]any, bool, error) {
		if err := r.openStream(1, "/etcdserverpb.Watch/Watch"); err != nil {
			return nil, false, err
		}
		sent, g, err := r.pingsUntilGoAway(8)
		if err != nil {
			return nil, false, err
		}
		return map[string]any{"pings_until_goaway": sent, "goaway": g}, g == "ENHANCE_YOUR_CALM too_many_pings", nil
	}))
	// A ping right after each response (what grpc-go's BDP estimator does):
	// the write resets the strikes, so no GOAWAY however many.
	out = append(out, rawCheck("ping_after_each_response", addr, func(r *rawConn) (map[string]any, bool, error) {
		pings := 0
		for i := 0; i < 10; i++ {
			if err := r.unaryRange(uint32(2*i + 1)); err != nil {
				return nil, false, err
			}
			for j := 0; j < 2; j++ { // two strikes' worth, then the next response clears them
				g, err := r.pingAndWait(uint64(100*i + j))
				if err != nil {
					return nil, false, err
				}
				if g != "" {
					return map[string]any{"pings": pings, "goaway": g}, false, nil
				}
				pings++
			}
		}
		return map[string]any{"pings": pings, "goaway": ""}, true, nil
	}))
	// Two strikes are forgiven, the third is not: ping, ping, ping (strikes 1
	// and 2), a response (reset), then pings again until the GOAWAY.
	out = append(out, rawCheck("ping_strikes_reset_by_response", addr, func(r *rawConn) (map[string]any, bool, error) {
		first, g, err := r.pingsUntilGoAway(3)
		if err != nil || g != "" {
			return map[string]any{"first_run": first, "goaway": g}, false, err
		}
		if err := r.unaryRange(1); err != nil {
			return nil, false, err
		}
		second, g, err := r.pingsUntilGoAway(8)
		if err != nil {
			return nil, false, err
		}
		return map[string]any{"first_run": first, "second_run": second, "goaway": g}, g == "ENHANCE_YOUR_CALM too_many_pings", nil
	}))
	return out
}

func rawCheck(name, addr string, f func(*rawConn) (map[string]any, bool, error)) Result {
	r, err := dialRaw(addr)
	if err != nil {
		return Result{Check: name, Error: err.Error()}
	}
	defer r.conn.Close()
	res, pass, err := f(r)
	out := Result{Check: name, Pass: pass && err == nil, Result: res}
	if err != nil {
		out.Error = err.Error()
	}
	return out
}

// keepaliveChecks exercise --grpc-keepalive-min-time, -interval and -timeout
// (the server is started with short values): pings at a fixed spacing with
// and without a stream open, and the server's own pings to a client that
// answers them and to one that does not.
func keepaliveChecks(addr string, spacing time.Duration) []Result {
	spaced := func(r *rawConn) (map[string]any, bool, error) {
		for n := uint64(1); n <= 6; n++ {
			g, err := r.pingAndWait(n)
			if err != nil {
				return nil, false, err
			}
			if g == "" {
				g = r.goAwayWithin(spacing)
			}
			if g != "" {
				return map[string]any{"pings": n, "goaway": g}, true, nil
			}
		}
		return map[string]any{"pings": 6, "goaway": ""}, true, nil
	}
	var out []Result
	out = append(out, rawCheck("spaced_pings_idle", addr, spaced))
	out = append(out, rawCheck("spaced_pings_open_stream", addr, func(r *rawConn) (map[string]any, bool, error) {
		if err := r.openStream(1, "/etcdserverpb.Watch/Watch"); err != nil {
			return nil, false, err
		}
		return spaced(r)
	}))
	for _, answer := range []bool{false, true} {
		name := "server_ping_unanswered"
		if answer {
			name = "server_ping_answered"
		}
		r, err := dialRawWith(addr, answer)
		if err != nil {
			out = append(out, Result{Check: name, Error: err.Error()})
			continue
		}
		start := time.Now()
		closed := r.closedWithin(8 * time.Second)
		seconds := time.Since(start).Seconds()
		pings := atomic.LoadInt32(&r.serverPings)
		r.conn.Close()
		out = append(out, Result{Check: name, Pass: true, Result: map[string]any{"pinged": pings > 0, "closed": closed},
			Info: map[string]any{"server_pings": pings, "seconds": seconds}})
	}
	return out
}
