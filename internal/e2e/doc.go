// Package e2e holds rasentry's end-to-end tests (issue 7 item 5): the
// rasentry binary, built once per test run, runs inside the gateway
// namespace of an internal/netlab lab while real peers (xrdp with xfreerdp,
// impacket's DCOM client against a fake activator, samba, miredo,
// miniupnpd with upnpc, dnsmasq with dig, Go HTTP, ping) talk through the
// gateway. The tests prove that live capture labels traffic as the replay
// of the same traffic does, that inline mode with the disable-all preset
// blocks Remote Assistance and passes everything else, that the queue
// rules fail open and leave nothing behind, that the nftables enforcer's
// blocks expire, and that live capture keeps up with a fixed background
// rate without kernel drops.
//
// The tests need root and the Debian packages that
// internal/netlab/install-packages.sh installs; without them they skip
// with a message that names what is missing. The package has no code of
// its own outside its tests.
package e2e
