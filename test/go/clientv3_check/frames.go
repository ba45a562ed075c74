package main

// A net.Conn wrapper that parses the HTTP/2 frames going both ways, so a
// check can count what grpc-go itself hides: GOAWAY frames from the server,
// pings in each direction, and how many connections the client dialed.

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"strings"
	"sync"
)

const (
	frameGoAway = 0x7
	framePing   = 0x6
	flagAck     = 0x1
)

var h2Codes = map[uint32]string{
	0x0: "NO_ERROR", 0x1: "PROTOCOL_ERROR", 0x2: "INTERNAL_ERROR", 0x3: "FLOW_CONTROL_ERROR",
	0x4: "SETTINGS_TIMEOUT", 0x5: "STREAM_CLOSED", 0x6: "FRAME_SIZE_ERROR", 0x7: "REFUSED_STREAM",
	0x8: "CANCEL", 0x9: "COMPRESSION_ERROR", 0xa: "CONNECT_ERROR", 0xb: "ENHANCE_YOUR_CALM",
	0xc: "INADEQUATE_SECURITY", 0xd: "HTTP_1_1_REQUIRED",
}

func codeName(c uint32) string {
	if n, ok := h2Codes[c]; ok {
		return n
	}
	return fmt.Sprintf("0x%x", c)
}

// FrameStats is what one client's connections saw on the wire.
type FrameStats struct {
	mu          sync.Mutex
	Conns       int
	GoAways     []string // "CODE debug" of each GOAWAY the server sent
	ServerPings int      // non-ACK pings from the server
	ClientPings int      // non-ACK pings from the client (keepalive and BDP)
}

func (s *FrameStats) snapshot() (conns int, goaways []string, serverPings, clientPings int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.Conns, append([]string{}, s.GoAways...), s.ServerPings, s.ClientPings
}

// Dial is a grpc.WithContextDialer dialer that counts every frame.
func (s *FrameStats) Dial(ctx context.Context, addr string) (net.Conn, error) {
	if i := strings.Index(addr, "://"); i >= 0 {
		addr = addr[i+3:]
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.Conns++
	s.mu.Unlock()
	cc := &countingConn{Conn: c}
	cc.in = frameParser{onFrame: func(t, flags byte, payload []byte) {
		s.mu.Lock()
		defer s.mu.Unlock()
		switch {
		case t == frameGoAway && len(payload) >= 8:
			s.GoAways = append(s.GoAways, codeName(binary.BigEndian.Uint32(payload[4:8]))+" "+string(payload[8:]))
		case t == framePing && flags&flagAck == 0:
			s.ServerPings++
		}
	}}
	cc.out = frameParser{skip: 24, onFrame: func(t, flags byte, _ []byte) {
		if t == framePing && flags&flagAck == 0 {
			s.mu.Lock()
			s.ClientPings++
			s.mu.Unlock()
		}
	}}
	return cc, nil
}

type countingConn struct {
	net.Conn
	rmu, wmu sync.Mutex
	in, out  frameParser
}

func (c *countingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.rmu.Lock()
	c.in.feed(b[:n])
	c.rmu.Unlock()
	return n, err
}

func (c *countingConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.wmu.Lock()
	c.out.feed(b[:n])
	c.wmu.Unlock()
	return n, err
}

// frameParser splits a byte stream into HTTP/2 frames. Only GOAWAY and PING
// payloads are kept (they are small); every other payload is skipped.
type frameParser struct {
	skip    int // bytes to ignore first (the client connection preface)
	header  []byte
	left    int // payload bytes of the current frame still to come
	keep    bool
	payload []byte
	typ     byte
	flags   byte
	onFrame func(typ, flags byte, payload []byte)
}

func (p *frameParser) feed(b []byte) {
	for len(b) > 0 {
		if p.skip > 0 {
			n := min(p.skip, len(b))
			p.skip -= n
			b = b[n:]
			continue
		}
		if p.left == 0 && len(p.header) < 9 {
			n := min(9-len(p.header), len(b))
			p.header = append(p.header, b[:n]...)
			b = b[n:]
			if len(p.header) < 9 {
				return
			}
			p.left = int(p.header[0])<<16 | int(p.header[1])<<8 | int(p.header[2])
			p.typ, p.flags = p.header[3], p.header[4]
			p.keep = p.typ == frameGoAway || p.typ == framePing
			p.payload = p.payload[:0]
			if p.left == 0 {
				p.done()
			}
			continue
		}
		n := min(p.left, len(b))
		if p.keep {
			p.payload = append(p.payload, b[:n]...)
		}
		p.left -= n
		b = b[n:]
		if p.left == 0 {
			p.done()
		}
	}
}

func (p *frameParser) done() {
	p.onFrame(p.typ, p.flags, p.payload)
	p.header = p.header[:0]
}

func min(a, b int) int {
	if a < b {
		return a
	}
	return b
}
