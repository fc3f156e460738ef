package scenario

import (
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"time"
	"unicode/utf16"

	"github.com/rasentry/rasentry/internal/testutil"
)

func init() {
	register(Scenario{Name: "offer", Build: buildOffer, Description: "Offer Remote Assistance inside a domain: " +
		"DCOM on TCP 135 (ServerAlive2, RemoteCreateInstance of the RASrv class at packet integrity), the RASrv " +
		"object exporter's dynamic port (bind to IRASrv at packet privacy, opnums 8 and 7), then RDP from the " +
		"helper to the user's dynamic port with standard RDP security and the encomsp/remdesk channels"})
	register(Scenario{Name: "invitation-mail", Build: buildInvitationMail, Description: "a user mails a " +
		".MSRCIncident invitation (SMTP, MIME base64 attachment, plain RCTICKET listener list), then a helper " +
		"on the Internet connects with RDP to the listener the ticket names"})
	register(Scenario{Name: "upnp", Build: buildUPnP, Description: "a user's host finds the router by SSDP, " +
		"fetches its description, maps an external port to its Remote Assistance listener with SOAP " +
		"AddPortMapping, an Internet helper connects with RDP to it, and the mapping is deleted"})
	register(Scenario{Name: "rdp-plain", Build: buildRDPPlain, Description: "look-alike: ordinary Remote " +
		"Desktop to TCP 3389 with an mstshash cookie, TLS and CredSSP (must not become a session)"})
	register(Scenario{Name: "dcom-wmi", Build: buildDCOMWMI, Description: "look-alike: WMI management over " +
		"DCOM (activation of WbemLevel1Login on 135, then IWbemLevel1Login on the dynamic port); no RDP follows " +
		"(must not become a session)"})
}

// randBytes returns n pseudo-random bytes from r.
func randBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// tcpTurns plays a TCP connection whose payloads alternate client, server,
// client, ...; nil skips a turn.
func tcpTurns(r *rand.Rand, client, server netip.AddrPort, t time.Time, step time.Duration, turns ...[]byte) []testutil.Frame {
	c := testutil.TCPConversation{Endpoints: testutil.Endpoints{Client: client, Server: server},
		ClientISN: r.Uint32(), ServerISN: r.Uint32(), Step: step}
	return c.Frames(t, turns...)
}

// dcomActivation plays the port-135 part of a DCOM activation: ServerAlive2
// without security, then RemoteCreateInstance for clsid at packet integrity
// with NTLM, answered with the exporter's bindings.
func dcomActivation(r *rand.Rand, client, server netip.AddrPort, t time.Time, clsid, iid [16]byte, host string, port uint16) []testutil.Frame {
	ctxOX := []ctxItem{{id: 0, abstract: uuidIObjectExport, transfer: uuidNDR, tver: 2}}
	ctxAct := []ctxItem{{id: 1, abstract: uuidISystemAct, transfer: uuidNDR, tver: 2}}
	bindings := []string{fmt.Sprintf("%s[%d]", host, port), fmt.Sprintf("%s[%d]", server.Addr(), port)}
	return tcpTurns(r, client, server, t, 2*time.Millisecond,
		dceBind(ptBind, 1, ctxOX, 0, nil),
		dceBindAck(ptBindAck, 1, "135", 1, 0, nil),
		dceRequest(2, 0, 5, nil, nil, 0, nil), // ServerAlive2
		dceResponse(2, 0, serverAlive2Response([]string{host, server.Addr().String()}), 0, nil),
		dceBind(ptAlter, 3, ctxAct, authLevelInt, ntlmNegotiate()),
		dceBindAck(ptAlterR, 3, "", 1, authLevelInt, ntlmChallenge(randBytes(r, 8))),
		// auth3 and the activation request in one segment, as Windows sends them
		append(pdu(ptAuth3, pfcFirstLast, 3, []byte{0, 0, 0, 0}, authTypeNTLM, authLevelInt, ntlmAuthenticate(randBytes(r, 16))),
			dceRequest(4, 1, 4, nil, activationRequestStub(clsid, iid, randBytes(r, 16)), authLevelInt, verifier(randBytes(r, 12)))...),
		dceResponse(4, 1, activationResponseStub(bindings, randBytes(r, 24)), authLevelInt, verifier(randBytes(r, 12))),
	)
}

func buildOffer(o Options, r *rand.Rand) []testutil.Frame {
	expert := orDefault(o.Client, "10.10.0.21")
	novice := orDefault(o.Server, "10.10.5.37")
	t := o.Start
	dcomPort := uint16(49703)
	rdpPort := uint16(49800)
	var out []testutil.Frame
	out = append(out, dcomActivation(r, netip.AddrPortFrom(expert, ephemeral(r)), netip.AddrPortFrom(novice, 135), t,
		clsidRASrv, uuidIUnknown, "NOVICE-PC", dcomPort)...)

	// The RASrv object exporter: bind IRASrv at packet privacy, then the
	// ORPC calls that fetch the connection string (opnums 8 and 7).
	ipid := [16]byte(randBytes(r, 16))
	ctx := []ctxItem{{id: 0, abstract: uuidIRASrv, transfer: uuidNDR, tver: 2}}
	sealed := func(n int) []byte { return randBytes(r, n) }
	out = append(out, tcpTurns(r, netip.AddrPortFrom(expert, ephemeral(r)), netip.AddrPortFrom(novice, dcomPort), t.Add(300*time.Millisecond), 2*time.Millisecond,
		dceBind(ptBind, 1, ctx, authLevelPriv, ntlmNegotiate()),
		dceBindAck(ptBindAck, 1, fmt.Sprint(dcomPort), 1, authLevelPriv, ntlmChallenge(randBytes(r, 8))),
		append(pduAuth3(r), dceRequest(2, 0, 8, &ipid, sealed(48), authLevelPriv, verifier(randBytes(r, 12)))...),
		dceResponse(2, 0, sealed(64), authLevelPriv, verifier(randBytes(r, 12))),
		dceRequest(3, 0, 7, &ipid, sealed(32), authLevelPriv, verifier(randBytes(r, 12))),
		dceResponse(3, 0, sealed(1400), authLevelPriv, verifier(randBytes(r, 12))),
	)...)

	// RDP from the helper to the user's Remote Assistance listener.
	out = append(out, raRDP(r, netip.AddrPortFrom(expert, ephemeral(r)), netip.AddrPortFrom(novice, rdpPort), t.Add(4*time.Second), "HELPDESK-07")...)
	return out
}

// pduAuth3 is the third NTLM leg of a bind (MS-RPCE §2.2.2.10 rpc_auth_3).
func pduAuth3(r *rand.Rand) []byte {
	return pdu(ptAuth3, pfcFirstLast, 1, []byte{0, 0, 0, 0}, authTypeNTLM, authLevelPriv, ntlmAuthenticate(randBytes(r, 16)))
}

// raRDP is the RDP connection a Remote Assistance expert opens to the
// novice's listener: no cookie, PROTOCOL_RDP only, standard RDP security
// with the encomsp and remdesk channels, then encrypted traffic.
func raRDP(r *rand.Rand, expert, novice netip.AddrPort, t time.Time, clientName string) []testutil.Frame {
	turns := [][]byte{
		x224CR("", true, protoRDP),
		x224CC(protoRDP),
		mcsConnectInitial(clientName, 7601, []string{"encomsp", "remdesk"}),
		mcsConnectResponse(2, randBytes(r, 160)),
		append(mcsErectDomain, mcsAttachUser...),
		mcsAttachConfirm,
		append(rdpSecurityExchange(randBytes(r, 64)), rdpEncrypted(false, secInfoPkt, randBytes(r, 300), 280)...),
		rdpEncrypted(true, 0, randBytes(r, 200), 180),
	}
	for i := 0; i < 6; i++ {
		turns = append(turns, rdpEncrypted(i%2 == 1, 0, randBytes(r, 268), 60+r.IntN(200)))
	}
	return tcpTurns(r, expert, novice, t, 5*time.Millisecond, turns...)
}

// incident is a .MSRCIncident invitation (MS-RAI §6) in UTF-16LE with a BOM.
func incident(r *rand.Rand, listeners []string, start time.Time) []byte {
	var hexTicket strings.Builder
	for _, b := range randBytes(r, 96) {
		fmt.Fprintf(&hexTicket, "%02X", b)
	}
	x := fmt.Sprintf(`<?xml version="1.0" encoding="Unicode" ?><UPLOADINFO TYPE="Escalated"><UPLOADDATA USERNAME="jsmith" `+
		`LHTICKET="%s" RCTICKET="65538,1,%s,*,%s,*,*,%s" RCTICKETENCRYPTED="1" DtStart="%d" DtLength="360" PassStub="%s" L="0" /></UPLOADINFO>`,
		hexTicket.String(), strings.Join(listeners, ";"), base64.StdEncoding.EncodeToString(randBytes(r, 24)),
		base64.StdEncoding.EncodeToString(randBytes(r, 12)), start.Unix(), "Xy9*kq2!Tz#w1B")
	b := []byte{0xff, 0xfe}
	for _, c := range utf16.Encode([]rune(x)) {
		b = append(b, byte(c), byte(c>>8))
	}
	return b
}

func buildInvitationMail(o Options, r *rand.Rand) []testutil.Frame {
	novice := orDefault(o.Client, "10.10.5.37")
	mail := orDefault(o.Server, "10.10.0.25")
	expert := netip.MustParseAddr("203.0.113.50")
	t := o.Start
	port := uint16(49800)
	inc := incident(r, []string{fmt.Sprintf("%s:%d", novice, port), fmt.Sprintf("NOVICE-PC:%d", port)}, t)
	att := base64.StdEncoding.EncodeToString(inc)
	var wrapped strings.Builder
	for i := 0; i < len(att); i += 76 {
		wrapped.WriteString(att[i:min(i+76, len(att))])
		wrapped.WriteString("\r\n")
	}
	msg := "From: jsmith@corp.example\r\nTo: helper@partner.example\r\nSubject: You have received a Remote Assistance invitation\r\n" +
		"Date: " + t.Format(time.RFC1123Z) + "\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"rasb0\"\r\n\r\n" +
		"--rasb0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nPlease help me with my computer.\r\n" +
		"--rasb0\r\nContent-Type: application/octet-stream; name=\"RAInvitation.msrcincident\"\r\n" +
		"Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"RAInvitation.msrcincident\"\r\n\r\n" +
		wrapped.String() + "--rasb0--\r\n.\r\n"
	smtp := tcpTurns(r, netip.AddrPortFrom(novice, ephemeral(r)), netip.AddrPortFrom(mail, 25), t, 3*time.Millisecond,
		nil, []byte("220 mail.corp.example ESMTP\r\n"),
		[]byte("EHLO novice-pc.corp.example\r\n"), []byte("250-mail.corp.example\r\n250 8BITMIME\r\n"),
		[]byte("MAIL FROM:<jsmith@corp.example>\r\n"), []byte("250 2.1.0 Ok\r\n"),
		[]byte("RCPT TO:<helper@partner.example>\r\n"), []byte("250 2.1.5 Ok\r\n"),
		[]byte("DATA\r\n"), []byte("354 End data with <CR><LF>.<CR><LF>\r\n"),
		[]byte(msg), []byte("250 2.0.0 Ok: queued\r\n"),
		[]byte("QUIT\r\n"), []byte("221 2.0.0 Bye\r\n"))
	out := smtp
	out = append(out, raRDP(r, netip.AddrPortFrom(expert, ephemeral(r)), netip.AddrPortFrom(novice, port), t.Add(90*time.Second), "HELPER")...)
	return out
}

func buildUPnP(o Options, r *rand.Rand) []testutil.Frame {
	host := orDefault(o.Client, "192.168.1.20")
	router := orDefault(o.Server, "192.168.1.1")
	expert := netip.MustParseAddr("198.51.100.77")
	t := o.Start
	port := uint16(49800)
	var out []testutil.Frame
	ssdpHost := netip.AddrPortFrom(host, ephemeral(r))
	group := netip.MustParseAddrPort("239.255.255.250:1900")
	search := "M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\nMAN: \"ssdp:discover\"\r\nMX: 2\r\n\r\n"
	reply := "HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=120\r\nST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\n" +
		"USN: uuid:4f1e6a2c-3b8d-4e0a-9c11-7d2b5e8f0a11::urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\nEXT:\r\n" +
		"SERVER: Debian/12 UPnP/1.1 MiniUPnPd/2.3.1\r\nLOCATION: http://" + router.String() + ":5000/rootDesc.xml\r\n\r\n"
	out = append(out,
		testutil.Frame{Time: t, Data: testutil.UDPPacket(ssdpHost, group, 0, []byte(search))},
		testutil.Frame{Time: t.Add(20 * time.Millisecond), Data: testutil.UDPPacket(netip.AddrPortFrom(router, 1900), ssdpHost, 0, []byte(reply))})
	ctl := netip.AddrPortFrom(router, 5000)
	desc := `<?xml version="1.0"?><root xmlns="urn:schemas-upnp-org:device-1-0"><specVersion><major>1</major><minor>1</minor></specVersion>` +
		`<device><deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:1</deviceType><friendlyName>router</friendlyName>` +
		`<deviceList><device><deviceType>urn:schemas-upnp-org:device:WANDevice:1</deviceType><deviceList><device>` +
		`<deviceType>urn:schemas-upnp-org:device:WANConnectionDevice:1</deviceType><serviceList><service>` +
		`<serviceType>urn:schemas-upnp-org:service:WANIPConnection:1</serviceType><serviceId>urn:upnp-org:serviceId:WANIPConn1</serviceId>` +
		`<controlURL>/ctl/IPConn</controlURL><eventSubURL>/evt/IPConn</eventSubURL><SCPDURL>/WANIPCn.xml</SCPDURL>` +
		`</service></serviceList></device></deviceList></device></deviceList></device></root>`
	out = append(out, tcpTurns(r, netip.AddrPortFrom(host, ephemeral(r)), ctl, t.Add(50*time.Millisecond), time.Millisecond,
		[]byte("GET /rootDesc.xml HTTP/1.1\r\nHost: "+ctl.String()+"\r\nConnection: close\r\n\r\n"),
		[]byte(fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Type: text/xml; charset=\"utf-8\"\r\nContent-Length: %d\r\n\r\n%s", len(desc), desc)))...)
	soap := func(action, args string) []byte {
		body := `<?xml version="1.0"?>` + "\r\n" + `<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body>` +
			`<u:` + action + ` xmlns:u="urn:schemas-upnp-org:service:WANIPConnection:1">` + args + `</u:` + action + `></s:Body></s:Envelope>` + "\r\n"
		return []byte(fmt.Sprintf("POST /ctl/IPConn HTTP/1.1\r\nHost: %s\r\nContent-Type: text/xml; charset=\"utf-8\"\r\n"+
			"SOAPAction: \"urn:schemas-upnp-org:service:WANIPConnection:1#%s\"\r\nContent-Length: %d\r\n\r\n%s", ctl, action, len(body), body))
	}
	okBody := func(action string) []byte {
		body := `<?xml version="1.0"?>` + "\r\n" + `<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body>` +
			`<u:` + action + `Response xmlns:u="urn:schemas-upnp-org:service:WANIPConnection:1"/></s:Body></s:Envelope>` + "\r\n"
		return []byte(fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Type: text/xml; charset=\"utf-8\"\r\nContent-Length: %d\r\n\r\n%s", len(body), body))
	}
	add := fmt.Sprintf("<NewRemoteHost></NewRemoteHost><NewExternalPort>%d</NewExternalPort><NewProtocol>TCP</NewProtocol>"+
		"<NewInternalPort>%d</NewInternalPort><NewInternalClient>%s</NewInternalClient><NewEnabled>1</NewEnabled>"+
		"<NewPortMappingDescription>Remote Assistance</NewPortMappingDescription><NewLeaseDuration>0</NewLeaseDuration>", port, port, host)
	out = append(out, tcpTurns(r, netip.AddrPortFrom(host, ephemeral(r)), ctl, t.Add(200*time.Millisecond), time.Millisecond,
		soap("AddPortMapping", add), okBody("AddPortMapping"))...)
	// The helper comes in through the mapping; seen on the LAN side after NAT.
	out = append(out, raRDP(r, netip.AddrPortFrom(expert, ephemeral(r)), netip.AddrPortFrom(host, port), t.Add(30*time.Second), "HELPER")...)
	del := fmt.Sprintf("<NewRemoteHost></NewRemoteHost><NewExternalPort>%d</NewExternalPort><NewProtocol>TCP</NewProtocol>", port)
	out = append(out, tcpTurns(r, netip.AddrPortFrom(host, ephemeral(r)), ctl, t.Add(5*time.Minute), time.Millisecond,
		soap("DeletePortMapping", del), okBody("DeletePortMapping"))...)
	return out
}

func buildRDPPlain(o Options, r *rand.Rand) []testutil.Frame {
	client := orDefault(o.Client, "10.10.3.14")
	server := orDefault(o.Server, "10.10.9.9")
	hello := append([]byte{0x16, 0x03, 0x01, 0x00, 0xc4, 0x01, 0x00, 0x00, 0xc0, 0x03, 0x03}, randBytes(r, 196)...)
	turns := [][]byte{
		x224CR("alice", true, protoSSL|protoHybrid|protoHybEx),
		x224CC(protoHybEx),
		hello,
		append([]byte{0x16, 0x03, 0x03, 0x04, 0x00}, randBytes(r, 1024)...),
	}
	for i := 0; i < 8; i++ {
		turns = append(turns, append([]byte{0x17, 0x03, 0x03, 0x00, 0x80}, randBytes(r, 128)...))
	}
	return tcpTurns(r, netip.AddrPortFrom(client, ephemeral(r)), netip.AddrPortFrom(server, 3389), o.Start, 5*time.Millisecond, turns...)
}

func buildDCOMWMI(o Options, r *rand.Rand) []testutil.Frame {
	admin := orDefault(o.Client, "10.10.0.30")
	target := orDefault(o.Server, "10.10.9.12")
	t := o.Start
	port := uint16(49668)
	out := dcomActivation(r, netip.AddrPortFrom(admin, ephemeral(r)), netip.AddrPortFrom(target, 135), t,
		clsidWbemLevel1, uuidIWbemLevel1, "SERVER12", port)
	ipid := [16]byte(randBytes(r, 16))
	ctx := []ctxItem{{id: 0, abstract: uuidIWbemLevel1, transfer: uuidNDR, tver: 2}, {id: 1, abstract: uuidIRemUnknown2, transfer: uuidNDR, tver: 2}}
	out = append(out, tcpTurns(r, netip.AddrPortFrom(admin, ephemeral(r)), netip.AddrPortFrom(target, port), t.Add(200*time.Millisecond), 2*time.Millisecond,
		dceBind(ptBind, 1, ctx, authLevelPriv, ntlmNegotiate()),
		dceBindAck(ptBindAck, 1, fmt.Sprint(port), 2, authLevelPriv, ntlmChallenge(randBytes(r, 8))),
		append(pduAuth3(r), dceRequest(2, 0, 6, &ipid, randBytes(r, 96), authLevelPriv, verifier(randBytes(r, 12)))...), // NTLMLogin
		dceResponse(2, 0, randBytes(r, 400), authLevelPriv, verifier(randBytes(r, 12))),
		dceRequest(3, 1, 5, &ipid, randBytes(r, 40), authLevelPriv, verifier(randBytes(r, 12))), // RemRelease
		dceResponse(3, 1, randBytes(r, 16), authLevelPriv, verifier(randBytes(r, 12))),
	)...)
	return out
}
