package classify

import (
	"net/netip"
	"testing"
	"time"
)

func rdpFlow(id uint64, client, server string, labels ...Label) *Flow {
	f := &Flow{ID: id, Proto: ProtoTCP, Client: netip.MustParseAddrPort(client), Server: netip.MustParseAddrPort(server)}
	for _, l := range labels {
		f.AddLabel(l, ConfidenceHigh)
	}
	return f
}

func TestSessionChains(t *testing.T) {
	expert, novice := "10.1.0.5", "10.1.0.9"
	tests := []struct {
		name     string
		setup    func(st *SessionTable, now time.Time)
		rdp      func() *Flow
		after    time.Duration
		wantMode SessionMode
		members  int
	}{
		{
			name: "offer: DCOM offer then RDP between the same hosts",
			setup: func(st *SessionTable, now time.Time) {
				st.Observe(rdpFlow(1, expert+":50001", novice+":135", LabelDCERPC, LabelDCOMActivation), now)
				st.Observe(rdpFlow(2, expert+":50002", novice+":49700", LabelDCERPC, LabelRADCOMOffer), now)
			},
			rdp:      func() *Flow { return rdpFlow(3, expert+":50003", novice+":49800", LabelRDP) },
			after:    30 * time.Second,
			wantMode: ModeOffer, members: 2,
		},
		{
			name: "offer window passed: no session",
			setup: func(st *SessionTable, now time.Time) {
				st.Observe(rdpFlow(2, expert+":50002", novice+":49700", LabelDCERPC, LabelRADCOMOffer), now)
			},
			rdp:   func() *Flow { return rdpFlow(3, expert+":50003", novice+":49800", LabelRDP) },
			after: 3 * time.Minute,
		},
		{
			name: "offer between other hosts does not count",
			setup: func(st *SessionTable, now time.Time) {
				st.Observe(rdpFlow(2, "10.9.9.9:50002", novice+":49700", LabelRADCOMOffer), now)
			},
			rdp: func() *Flow { return rdpFlow(3, expert+":50003", novice+":49800", LabelRDP) },
		},
		{
			name: "invitation: RDP to a ticket's listener",
			rdp: func() *Flow {
				f := rdpFlow(4, expert+":50003", novice+":51234", LabelRDP)
				f.Ext().Expected = &Expectation{Reason: "invitation"}
				return f
			},
			wantMode: ModeInvitation, members: 1,
		},
		{
			name: "upnp: RDP to a mapped port",
			rdp: func() *Flow {
				f := rdpFlow(5, "198.51.100.7:50003", novice+":3390", LabelRDP)
				f.Ext().Expected = &Expectation{Reason: "upnp-portmap"}
				return f
			},
			wantMode: ModeUPnP, members: 1,
		},
		{
			name: "easy connect: PNRP RA activity then RDP inside Teredo",
			setup: func(st *SessionTable, now time.Time) {
				p := rdpFlow(6, "[2001:0:c633:640a::1]:3540", "[2001:0:c633:640a::2]:3540", LabelPNRP, LabelPNRPRAEasyConnect)
				p.Proto = ProtoUDP
				st.Observe(p, now)
			},
			rdp: func() *Flow {
				f := rdpFlow(7, "[2001:0:c633:640a::3]:50000", "[2001:0:c633:640a::2]:49900", LabelRDP)
				f.Ext().Tunnel = &Tunnel{Type: "teredo"}
				return f
			},
			after:    10 * time.Minute,
			wantMode: ModeEasyConnect, members: 2,
		},
		{
			name: "RDP inside Teredo without PNRP: no easy-connect",
			rdp: func() *Flow {
				f := rdpFlow(7, "[2001:0:c633:640a::3]:50000", "[2001:0:c633:640a::2]:49900", LabelRDP)
				f.Ext().Tunnel = &Tunnel{Type: "teredo"}
				return f
			},
		},
		{
			name:     "heuristic: RA-shaped RDP alone",
			rdp:      func() *Flow { return rdpFlow(8, expert+":50003", novice+":49800", LabelRDP, LabelRDPRACandidate) },
			wantMode: ModeUnknown, members: 1,
		},
		{
			name: "plain RDP: nothing",
			rdp:  func() *Flow { return rdpFlow(9, expert+":50003", novice+":3389", LabelRDP) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := NewSessionTable(nil)
			if tt.setup != nil {
				tt.setup(st, t0)
			}
			f := tt.rdp()
			s := st.Observe(f, t0.Add(tt.after))
			if tt.wantMode == "" {
				if s != nil {
					t.Fatalf("formed %+v, want none", s)
				}
				return
			}
			if s == nil {
				t.Fatal("no session")
			}
			if s.Mode != tt.wantMode || len(s.Members) != tt.members || !f.Labels.Has(LabelRASession) || f.Ext().Session != s {
				t.Errorf("session %+v members %d; flow labels %v", s, len(s.Members), f.Labels.Strings())
			}
			if s.Novice != f.Server.Addr() || s.Expert != f.Client.Addr() {
				t.Errorf("novice %v expert %v", s.Novice, s.Expert)
			}
			// Labels growing on a member does not form a second session.
			f.AddLabel(LabelRDPRACandidate, ConfidenceMedium)
			if again := st.Observe(f, t0.Add(tt.after)); again != nil {
				t.Error("second session for the same flow")
			}
			if st.SessionOf(f.ID) != s {
				t.Error("SessionOf lost the member")
			}
		})
	}
}

func TestSessionTableBounds(t *testing.T) {
	st := NewSessionTableConfig(SessionConfig{MaxPending: 100, MaxSessions: 10}, nil)
	for i := 0; i < 10000; i++ {
		a := netip.AddrFrom4([4]byte{10, 2, byte(i >> 8), byte(i)})
		f := &Flow{ID: uint64(i + 1), Proto: ProtoTCP, Client: netip.AddrPortFrom(a, 1), Server: netip.MustParseAddrPort("10.3.0.1:135")}
		f.AddLabel(LabelRADCOMOffer, ConfidenceDefinitive)
		st.Observe(f, t0)
		g := &Flow{ID: uint64(100000 + i), Proto: ProtoTCP, Client: netip.AddrPortFrom(a, 2), Server: netip.MustParseAddrPort("10.3.0.1:49999")}
		g.AddLabel(LabelRDPRACandidate, ConfidenceMedium)
		st.Observe(g, t0)
	}
	sessions, pendingN := st.Len()
	if sessions > 10 || pendingN > 100 {
		t.Errorf("sessions %d pending %d exceed bounds", sessions, pendingN)
	}
	if st.counters.SessionsDropped.Load() == 0 {
		t.Error("drops not counted")
	}
	// Everything expires.
	st.Observe(&Flow{ID: 1 << 40}, t0.Add(3*time.Hour))
	if s, p := st.Len(); s != 0 || p != 0 {
		t.Errorf("after expiry: sessions %d pending %d", s, p)
	}
}
