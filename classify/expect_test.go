package classify

import (
	"net/netip"
	"testing"
	"time"
)

func TestExpectTable(t *testing.T) {
	a := netip.MustParseAddr("10.0.0.9")
	tab := NewExpectTable(3, nil)
	tab.Add(Expectation{Addr: a, Port: 49800, Proto: ProtoTCP, Reason: "invitation", Created: t0, Expires: t0.Add(time.Minute)})
	if tab.Len() != 1 {
		t.Fatalf("len %d after one add", tab.Len())
	}
	if e := tab.Match(netip.MustParseAddr("::ffff:10.0.0.9"), 49800, ProtoTCP, t0.Add(time.Second)); e == nil || e.Met != 1 {
		t.Fatalf("mapped address did not match: %+v", e)
	}
	if tab.Match(a, 49800, ProtoUDP, t0) != nil || tab.Match(a, 49801, ProtoTCP, t0) != nil {
		t.Error("matched the wrong proto or port")
	}
	if tab.Match(a, 49800, ProtoTCP, t0.Add(2*time.Minute)) != nil || tab.Len() != 0 {
		t.Error("expired entry matched or stayed")
	}
	// Bound: the entry closest to expiry goes first.
	for i := 0; i < 5; i++ {
		tab.Add(Expectation{Addr: a, Port: uint16(1000 + i), Proto: ProtoTCP, Created: t0, Expires: t0.Add(time.Duration(10-i) * time.Minute)})
	}
	if tab.Len() != 3 {
		t.Fatalf("len %d, bound 3", tab.Len())
	}
	if tab.Match(a, 1004, ProtoTCP, t0) == nil || tab.Match(a, 1000, ProtoTCP, t0) == nil {
		t.Error("kept the wrong entries")
	}
	// Out of order: an expectation added after its flow began is still found by later flows.
	if !tab.Remove(a, 1004, ProtoTCP) || tab.Remove(a, 1004, ProtoTCP) {
		t.Error("Remove")
	}
	tab.Add(Expectation{Addr: a, Port: 0, Proto: ProtoTCP, Expires: t0.Add(time.Hour)})
	tab.Add(Expectation{Port: 5, Proto: ProtoTCP, Expires: t0.Add(time.Hour)})
	if tab.Len() != 2 {
		t.Errorf("invalid expectations were stored: len %d", tab.Len())
	}
}
