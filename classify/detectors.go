package classify

// DefaultDetectors returns the detectors every flow is offered, in the
// order they run. The order matters only for cost: cheap, selective
// detectors first.
func DefaultDetectors() []Detector {
	return []Detector{
		NewRDPDetector(RDPOptions{}),
		NewDCERPCDetector(DCERPCOptions{}),
		NewTeredoDetector(TeredoOptions{}),
		NewPNRPDetector(PNRPOptions{}),
		NewSSDPDetector(SSDPOptions{}),
		NewUPnPDetector(UPnPOptions{}),
		NewDNSDetector(DNSOptions{}),
		NewInvitationDetector(InvitationOptions{}),
	}
}
