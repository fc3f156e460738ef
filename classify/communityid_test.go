package classify

import (
	"net/netip"
	"testing"
)

// Vectors from the Community ID specification: the README's TCP example and
// every entry of baseline/baseline_deflt.json (corelight/community-id-spec),
// whose ICMP rows give the type as sport and the counterpart type or the
// code as dport, which is what CommunityID takes.
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
		{"baseline 58 fe80::200:86ff:fe05:80da>fe80::260:97ff:fe07:69ea", 0, a("fe80::200:86ff:fe05:80da"), a("fe80::260:97ff:fe07:69ea"), 135, 136, 58, "1:dGHyGvjMfljg6Bppwm3bg0LO8TY="},
		{"baseline 58 fe80::260:97ff:fe07:69ea>fe80::200:86ff:fe05:80da", 0, a("fe80::260:97ff:fe07:69ea"), a("fe80::200:86ff:fe05:80da"), 136, 135, 58, "1:dGHyGvjMfljg6Bppwm3bg0LO8TY="},
		{"baseline 58 fe80::260:97ff:fe07:69ea>fe80::200:86ff:fe05:80da", 0, a("fe80::260:97ff:fe07:69ea"), a("fe80::200:86ff:fe05:80da"), 135, 136, 58, "1:zavyT/cezQr1fmImYCwYnMXbgck="},
		{"baseline 58 fe80::200:86ff:fe05:80da>fe80::260:97ff:fe07:69ea", 0, a("fe80::200:86ff:fe05:80da"), a("fe80::260:97ff:fe07:69ea"), 136, 135, 58, "1:zavyT/cezQr1fmImYCwYnMXbgck="},
		{"baseline 58 3ffe:501:1800:2345::2>3ffe:507:0:1:200:86ff:fe05:80da", 0, a("3ffe:501:1800:2345::2"), a("3ffe:507:0:1:200:86ff:fe05:80da"), 3, 0, 58, "1:2ObVBgIn28oZvibYZhZMBgh7WdQ="},
		{"baseline 58 3ffe:501:410:0:2c0:dfff:fe47:33e>3ffe:507:0:1:200:86ff:fe05:80da", 0, a("3ffe:501:410:0:2c0:dfff:fe47:33e"), a("3ffe:507:0:1:200:86ff:fe05:80da"), 1, 4, 58, "1:hLZd0XGWojozrvxqE0dWB1iM6R0="},
		{"baseline 58 3ffe:507:0:1:200:86ff:fe05:80da>3ffe:501:0:1001::2", 0, a("3ffe:507:0:1:200:86ff:fe05:80da"), a("3ffe:501:0:1001::2"), 128, 129, 58, "1:+TW+HtLHvV1xnGhV1lv7XoJrqQg="},
		{"baseline 58 3ffe:501:0:1001::2>3ffe:507:0:1:200:86ff:fe05:80da", 0, a("3ffe:501:0:1001::2"), a("3ffe:507:0:1:200:86ff:fe05:80da"), 129, 128, 58, "1:+TW+HtLHvV1xnGhV1lv7XoJrqQg="},
		{"baseline 58 fe80::200:86ff:fe05:80da>ff02::2", 0, a("fe80::200:86ff:fe05:80da"), a("ff02::2"), 133, 134, 58, "1:hO+sN4H+MG5MY/8hIrXPqc4ZQz0="},
		{"baseline 58 fe80::260:97ff:fe07:69ea>ff02::1", 0, a("fe80::260:97ff:fe07:69ea"), a("ff02::1"), 134, 133, 58, "1:pkvHqCL88/tg1k4cPigmZXUtL00="},
		{"baseline 1 192.168.0.89>192.168.0.1", 0, a("192.168.0.89"), a("192.168.0.1"), 8, 0, 1, "1:X0snYXpgwiv9TZtqg64sgzUn6Dk="},
		{"baseline 1 192.168.0.1>192.168.0.89", 0, a("192.168.0.1"), a("192.168.0.89"), 0, 8, 1, "1:X0snYXpgwiv9TZtqg64sgzUn6Dk="},
		{"baseline 1 10.0.0.1>10.0.0.2", 0, a("10.0.0.1"), a("10.0.0.2"), 11, 0, 1, "1:YHxtAirCG//0OzkcVAukqKQN9xM="},
		{"baseline 6 2001:470:e5bf:dead:4957:2174:e82c:4887>2607:f8b0:400c:c03::1a", 0, a("2001:470:e5bf:dead:4957:2174:e82c:4887"), a("2607:f8b0:400c:c03::1a"), 63943, 25, 6, "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4="},
		{"baseline 6 2607:f8b0:400c:c03::1a>2001:470:e5bf:dead:4957:2174:e82c:4887", 0, a("2607:f8b0:400c:c03::1a"), a("2001:470:e5bf:dead:4957:2174:e82c:4887"), 25, 63943, 6, "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4="},
		{"baseline 132 192.168.170.8>192.168.170.56", 0, a("192.168.170.8"), a("192.168.170.56"), 7, 7, 132, "1:MP2EtRCAUIZvTw6MxJHLV7N7JDs="},
		{"baseline 132 192.168.170.56>192.168.170.8", 0, a("192.168.170.56"), a("192.168.170.8"), 7, 7, 132, "1:MP2EtRCAUIZvTw6MxJHLV7N7JDs="},
		{"baseline 6 128.232.110.120>66.35.250.204", 0, a("128.232.110.120"), a("66.35.250.204"), 34855, 80, 6, "1:LQU9qZlK+B5F3KDmev6m5PMibrg="},
		{"baseline 6 66.35.250.204>128.232.110.120", 0, a("66.35.250.204"), a("128.232.110.120"), 80, 34855, 6, "1:LQU9qZlK+B5F3KDmev6m5PMibrg="},
		{"baseline 17 192.168.1.52>8.8.8.8", 0, a("192.168.1.52"), a("8.8.8.8"), 54585, 53, 17, "1:d/FP5EW3wiY1vCndhwleRRKHowQ="},
		{"baseline 17 8.8.8.8>192.168.1.52", 0, a("8.8.8.8"), a("192.168.1.52"), 53, 54585, 17, "1:d/FP5EW3wiY1vCndhwleRRKHowQ="},
		{"baseline 46 10.1.12.1>10.1.12.2", 0, a("10.1.12.1"), a("10.1.12.2"), 0, 0, 46, "1:KHlLkgoJW7ifUTyTSgyVfkFHzKw="},
		{"baseline 46 10.1.12.2>10.1.12.1", 0, a("10.1.12.2"), a("10.1.12.1"), 0, 0, 46, "1:KHlLkgoJW7ifUTyTSgyVfkFHzKw="},
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
