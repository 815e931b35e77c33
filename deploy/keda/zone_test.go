package keda_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

// zone is a DNS server on the loopback interface answering A queries for a
// fixed set of names, and NXDOMAIN for every other name. useZone points the
// process's resolver (net.DefaultResolver, which both KEDA's HTTP client and
// the NATS servers' route dialer use) at it, so a test can give names to
// the loopback addresses its servers listen on, as a Kubernetes cluster's
// DNS names pods and Services, and no query leaves the machine.
type zone struct {
	conn    net.PacketConn
	records map[string][]netip.Addr // lower-case names without the final dot
}

// useZone starts a zone with records and makes it the process's resolver
// until the test ends. The test must not run in parallel with another that
// resolves names.
func useZone(t *testing.T, records map[string][]netip.Addr) {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("zone: %v", err)
	}
	z := &zone{conn: conn, records: map[string][]netip.Addr{}}
	for name, addrs := range records {
		z.records[strings.ToLower(strings.TrimSuffix(name, "."))] = addrs
	}
	done := make(chan struct{})
	go func() { defer close(done); z.serve() }()

	r := net.DefaultResolver
	preferGo, dial := r.PreferGo, r.Dial
	r.PreferGo = true
	r.Dial = func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", conn.LocalAddr().String())
	}
	t.Cleanup(func() {
		r.PreferGo, r.Dial = preferGo, dial
		conn.Close()
		<-done
	})
}

// serve answers queries until the connection is closed.
func (z *zone) serve() {
	buf := make([]byte, 1500)
	for {
		n, from, err := z.conn.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if resp, ok := z.answer(buf[:n]); ok {
			_, _ = z.conn.WriteTo(resp, from)
		}
	}
}

// answer builds the response to one query: the name's A records, no
// record of another type for a known name, NXDOMAIN for an unknown one.
func (z *zone) answer(query []byte) ([]byte, bool) {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil {
		return nil, false
	}
	q, err := p.Question()
	if err != nil {
		return nil, false
	}
	name := strings.ToLower(strings.TrimSuffix(q.Name.String(), "."))
	addrs, known := z.records[name]
	rh := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired}
	if !known {
		rh.RCode = dnsmessage.RCodeNameError
	}
	b := dnsmessage.NewBuilder(nil, rh)
	b.EnableCompression()
	if b.StartQuestions() != nil || b.Question(q) != nil || b.StartAnswers() != nil {
		return nil, false
	}
	if q.Type == dnsmessage.TypeA {
		for _, a := range addrs {
			rr := dnsmessage.ResourceHeader{Name: q.Name, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET, TTL: 1}
			if b.AResource(rr, dnsmessage.AResource{A: a.As4()}) != nil {
				return nil, false
			}
		}
	}
	resp, err := b.Finish()
	return resp, err == nil
}
