package netlab

import (
	"net"
	"net/netip"
	"testing"
	"time"
)

func TestTopology(t *testing.T) {
	l := New(t)
	for _, a := range []netip.Addr{ServerV4, ServerV6} {
		if !l.Client.Ping(a, 2) {
			t.Errorf("client cannot ping %v through the gateway", a)
		}
	}
	ln, err := l.Server.Listen("tcp", ":8080")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("hi"))
			c.Close()
		}
	}()
	for _, a := range []netip.Addr{ServerV4, ServerV6} {
		addr := netip.AddrPortFrom(a, 8080).String()
		c, err := l.Client.Dial("tcp", addr, 2*time.Second)
		if err != nil {
			t.Fatalf("dial %s: %v", addr, err)
		}
		buf := make([]byte, 2)
		c.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Read(buf); err != nil || string(buf) != "hi" {
			t.Errorf("read from %s: %q %v", addr, buf, err)
		}
		if got := c.LocalAddr().(*net.TCPAddr).AddrPort().Addr().Unmap(); got != ClientV4 && got != ClientV6 {
			t.Errorf("client address %v", got)
		}
		c.Close()
	}
}
