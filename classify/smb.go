package classify

import (
	"encoding/binary"
	"strings"
)

// SMB named pipes as a DCE/RPC carrier (protocols.md §1.1; [MS-SMB2] §2.2,
// [MS-CIFS] §2.2). The DCE/RPC detector follows an SMB1 or SMB2 session on
// TCP (445 direct, or 139 behind a NetBIOS session) only as far as it needs
// to: which trees are IPC$, which file ids are named pipes and what their
// names are, and the bytes written to and read from them (WRITE/READ, SMB2
// IOCTL FSCTL_PIPE_TRANSCEIVE, SMB1 TransactNmPipe). Those bytes are
// DCE/RPC PDUs and go through the same reader as plain TCP.

// SMB constants.
const (
	smb2Magic             = 0xfe
	smb1Magic             = 0xff
	smb3Transform         = 0xfd // encrypted: nothing to read
	smb3Compressed        = 0xfc
	smb2HeaderLen         = 64
	smb1HeaderLen         = 32
	smb2TreeConnect       = 0x03
	smb2Create            = 0x05
	smb2Read              = 0x08
	smb2Write             = 0x09
	smb2Ioctl             = 0x0b
	smb2FlagResponse      = 0x01
	smb2FlagAsync         = 0x02
	smb2SharePipe         = 0x02
	fsctlPipeTransceive   = 0x0011c017
	statusBufferOverflow  = 0x80000005 // a pipe read with more to come
	smb1Transaction       = 0x25
	smb1ReadAndX          = 0x2e
	smb1WriteAndX         = 0x2f
	smb1TreeConnectAndX   = 0x75
	smb1NTCreateAndX      = 0xa2
	smb1TransactNmPipe    = 0x0026
	smb1WriteMsgStart     = 0x0008
	smb1FlagReply         = 0x80
	smb1Flags2Unicode     = 0x8000
	smbMaxSealedMessages  = 4
	smbMaxChainedCommands = 8
)

// smbState is what the detector keeps about an SMB session.
type smbState struct {
	nb     [2]rpcReasm
	lost   [2]bool
	trees  [8]smbTree
	ntree  int
	names  [8]smbName
	nname  int
	pend   [8]smbPending
	npend  int
	msgs   int
	sealed int
}

type smbTree struct {
	id   uint32
	pipe bool
}

type smbName struct {
	fid  [16]byte
	name string
}

// Pending request kinds.
const (
	smbPendCreate uint8 = iota + 1
	smbPendRead
)

// smbPending ties a request to its response: a CREATE to the name it
// opened, a READ or transaction to the pipe it reads.
type smbPending struct {
	used bool
	kind uint8
	key  uint64 // SMB2 MessageId, or SMB1 PID<<16|MID
	fid  [16]byte
	name string
}

// smbStart reports whether p can begin an SMB session on TCP: a session
// message whose body starts with an SMB magic (as far as a short first
// segment goes), or a NetBIOS session request.
func smbStart(p []byte) bool {
	if len(p) == 0 {
		return false
	}
	switch p[0] {
	case 0x00:
		var h [8]byte
		copy(h[:], p)
		if len(p) < 5 {
			return h[1] == 0 || len(p) < 2 // a short prefix: a plausible length so far
		}
		m := h[4]
		return (m == smb1Magic || m == smb2Magic || m == smb3Transform) &&
			(len(p) < 6 || h[5] == 'S') && (len(p) < 7 || h[6] == 'M') && (len(p) < 8 || h[7] == 'B')
	case 0x81: // NetBIOS session request (TCP 139): two encoded names
		return len(p) >= 4+68 && p[1]&0xfe == 0 && 4+int(binary.BigEndian.Uint16(p[2:])) == len(p)
	}
	return false
}

// nbssFrameLen returns the length of a NetBIOS session service message
// (RFC 1002 §4.3.1; direct TCP SMB uses a 24-bit length), or -1.
func nbssFrameLen(b []byte) int {
	if len(b) < 4 {
		return -1
	}
	switch b[0] {
	case 0x00:
		return 4 + (int(b[1])<<16 | int(b[2])<<8 | int(b[3]))
	case 0x81, 0x82, 0x83, 0x84, 0x85:
		if b[1]&0xfe != 0 {
			return -1
		}
		return 4 + (int(b[1]&1)<<16 | int(b[2])<<8 | int(b[3]))
	}
	return -1
}

// inspectSMB reads one segment of an SMB session.
func (d *DCERPCDetector) inspectSMB(ctx *Context, f *Flow, st *dcerpcFlow, seg *Segment) Status {
	s := st.smb
	dir := seg.Dir & 1
	data := seg.Payload
	if seg.Gap {
		s.nb[dir].reset()
		s.lost[dir] = true
		for _, ch := range st.chans {
			ch.in[dir].reset()
			ch.lost[dir] = true
		}
	}
	if s.lost[dir] {
		if !smbResync(data) {
			return Continue
		}
		s.lost[dir] = false
		s.nb[dir].reset()
	}
	for len(data) > 0 {
		frame, rest, cut, status := s.nb[dir].next(data, frameNBSS, d.opts.MaxPDUSize)
		if status == rpcReasmNeed {
			break
		}
		if status == rpcReasmBad || !d.smbMessage(ctx, f, st, frame, cut) {
			if s.msgs == 0 {
				return Done
			}
			ctx.Counters.CountMalformed(dcerpcName)
			s.nb[dir].reset()
			s.lost[dir] = true
			break
		}
		s.msgs++
		data = rest
	}
	if st.pdus >= d.opts.MaxPDUs || (!st.matched && s.sealed >= smbMaxSealedMessages) {
		return Done
	}
	return Continue
}

// smbResync reports whether a segment starts with an SMB session message.
func smbResync(p []byte) bool {
	return len(p) >= 8 && p[0] == 0 && (p[4] == smb1Magic || p[4] == smb2Magic || p[4] == smb3Transform || p[4] == smb3Compressed) &&
		p[5] == 'S' && p[6] == 'M' && p[7] == 'B'
}

// smbMessage reads one NetBIOS session message and reports whether it was
// SMB.
func (d *DCERPCDetector) smbMessage(ctx *Context, f *Flow, st *dcerpcFlow, frame []byte, cut bool) bool {
	if frame[0] != 0 {
		return true // session request, response or keep-alive
	}
	m := frame[4:]
	if len(m) < 4 || m[1] != 'S' || m[2] != 'M' || m[3] != 'B' {
		return len(m) == 0
	}
	switch m[0] {
	case smb2Magic:
		d.smb2Message(ctx, f, st, m, cut)
	case smb1Magic:
		d.smb1Message(ctx, f, st, m, cut)
	case smb3Transform:
		st.smb.sealed++
	case smb3Compressed:
	default:
		return false
	}
	return true
}

// smb2Message reads an SMB2 message and the commands compounded after it
// ([MS-SMB2] §2.2.1, §3.2.4.1.4).
func (d *DCERPCDetector) smb2Message(ctx *Context, f *Flow, st *dcerpcFlow, m []byte, cut bool) {
	s := st.smb
	le := binary.LittleEndian
	off := 0
	for hop := 0; hop < smbMaxChainedCommands; hop++ {
		h := m[off:]
		if len(h) < smb2HeaderLen || h[0] != smb2Magic || h[1] != 'S' || h[2] != 'M' || h[3] != 'B' || le.Uint16(h[4:]) != smb2HeaderLen {
			return
		}
		cmd := le.Uint16(h[12:])
		status := le.Uint32(h[8:])
		flags := le.Uint32(h[16:])
		next := int(le.Uint32(h[20:]))
		mid := le.Uint64(h[24:])
		resp := flags&smb2FlagResponse != 0
		var tree uint32
		if flags&smb2FlagAsync == 0 {
			tree = le.Uint32(h[36:])
		}
		if next < 0 || (next > 0 && next < smb2HeaderLen) {
			return // a compound offset inside this header
		}
		msg := h
		if next > 0 && next < len(h) {
			msg = h[:next]
		}
		body := msg[smb2HeaderLen:]
		msgCut := cut && len(msg) == len(h)
		readOK := status == 0 || status == statusBufferOverflow
		switch cmd {
		case smb2TreeConnect:
			if resp && status == 0 && len(body) >= 4 {
				s.setTree(tree, body[2] == smb2SharePipe)
			}
		case smb2Create:
			if !resp && len(body) >= 56 {
				if pipe, known := s.tree(tree); known && !pipe {
					break
				}
				no, nl := int(le.Uint16(body[44:])), int(le.Uint16(body[46:]))
				if nl > 0 && no >= smb2HeaderLen && no+nl <= len(msg) {
					s.addPending(smbPending{kind: smbPendCreate, key: mid, name: smbPipeName(msg[no:no+nl], true)})
				}
			} else if resp && status == 0 && len(body) >= 80 {
				if p := s.takePending(smbPendCreate, mid); p != nil {
					st.namePipe([16]byte(body[64:80]), p.name)
				}
			}
		case smb2Write:
			if !resp && len(body) >= 48 {
				data, short := smbSlice(msg, int(le.Uint16(body[2:])), int(le.Uint32(body[4:])))
				d.pipeData(ctx, f, st, [16]byte(body[16:32]), ToServer, data, short && msgCut)
			}
		case smb2Read:
			if !resp && len(body) >= 48 {
				s.addPending(smbPending{kind: smbPendRead, key: mid, fid: [16]byte(body[16:32])})
			} else if resp && len(body) >= 16 {
				p := s.takePending(smbPendRead, mid)
				if p != nil && readOK {
					data, short := smbSlice(msg, int(body[2]), int(le.Uint32(body[4:])))
					d.pipeData(ctx, f, st, p.fid, ToClient, data, short && msgCut)
				}
			}
		case smb2Ioctl:
			if len(body) >= 48 && le.Uint32(body[4:]) == fsctlPipeTransceive {
				fid := [16]byte(body[8:24])
				if !resp && len(body) >= 56 {
					data, short := smbSlice(msg, int(le.Uint32(body[24:])), int(le.Uint32(body[28:])))
					d.pipeData(ctx, f, st, fid, ToServer, data, short && msgCut)
				} else if resp && readOK {
					data, short := smbSlice(msg, int(le.Uint32(body[32:])), int(le.Uint32(body[36:])))
					d.pipeData(ctx, f, st, fid, ToClient, data, short && msgCut)
				}
			}
		}
		if next <= 0 || next >= len(h) {
			return
		}
		off += next
	}
}

// smb1Message reads an SMB1 message and its AndX chain ([MS-CIFS] §2.2.3,
// §2.2.4).
func (d *DCERPCDetector) smb1Message(ctx *Context, f *Flow, st *dcerpcFlow, h []byte, cut bool) {
	s := st.smb
	le := binary.LittleEndian
	if len(h) < smb1HeaderLen+3 {
		return
	}
	cmd := h[4]
	status := le.Uint32(h[5:])
	resp := h[9]&smb1FlagReply != 0
	unicode := le.Uint16(h[10:])&smb1Flags2Unicode != 0
	tid := uint32(le.Uint16(h[24:]))
	key := uint64(le.Uint16(h[26:]))<<16 | uint64(le.Uint16(h[30:]))
	readOK := status == 0 || status == statusBufferOverflow
	off := smb1HeaderLen
	for hop := 0; hop < smbMaxChainedCommands; hop++ {
		if off >= len(h) {
			return
		}
		wc := int(h[off])
		pw := off + 1
		if pw+2*wc+2 > len(h) {
			return
		}
		params := h[pw : pw+2*wc]
		bo := pw + 2*wc + 2
		bytes := h[bo:min(len(h), bo+int(le.Uint16(h[pw+2*wc:])))]
		andx := false
		switch cmd {
		case smb1TreeConnectAndX:
			andx = true
			if resp && status == 0 && wc >= 3 && len(bytes) >= 3 {
				s.setTree(tid, string(bytes[:3]) == "IPC")
			}
		case smb1NTCreateAndX:
			andx = true
			if !resp && wc >= 24 {
				if pipe, known := s.tree(tid); known && !pipe {
					break
				}
				name := bytes
				if unicode && bo%2 == 1 && len(name) > 0 {
					name = name[1:] // pad to a 2-byte boundary
				}
				if nl := int(le.Uint16(params[5:])); nl > 0 && nl <= len(name) {
					name = name[:nl]
				}
				s.addPending(smbPending{kind: smbPendCreate, key: key, name: smbPipeName(name, unicode)})
			} else if resp && status == 0 && wc >= 34 {
				if p := s.takePending(smbPendCreate, key); p != nil {
					st.namePipe(smb1FID(params[5:]), p.name)
				}
			}
		case smb1WriteAndX:
			andx = true
			if !resp && wc >= 12 {
				n := int(le.Uint16(params[20:])) | int(le.Uint16(params[18:]))<<16
				data, short := smbSlice(h, int(le.Uint16(params[22:])), n)
				if le.Uint16(params[14:])&smb1WriteMsgStart != 0 && len(data) > 2 && data[0] != 5 && data[2] == 5 {
					data = data[2:] // message-mode pipe write: a 2-byte length leads
				}
				d.pipeData(ctx, f, st, smb1FID(params[4:]), ToServer, data, short && cut)
			}
		case smb1ReadAndX:
			andx = true
			if !resp && wc >= 10 {
				s.addPending(smbPending{kind: smbPendRead, key: key, fid: smb1FID(params[4:])})
			} else if resp && wc >= 12 {
				if p := s.takePending(smbPendRead, key); p != nil && readOK {
					data, short := smbSlice(h, int(le.Uint16(params[12:])), int(le.Uint16(params[10:])))
					d.pipeData(ctx, f, st, p.fid, ToClient, data, short && cut)
				}
			}
		case smb1Transaction:
			if !resp && wc >= 16 {
				sc := int(params[26])
				if sc >= 2 && wc >= 14+sc && le.Uint16(params[28:]) == smb1TransactNmPipe {
					fid := smb1FID(params[30:])
					s.addPending(smbPending{kind: smbPendRead, key: key, fid: fid})
					data, short := smbSlice(h, int(le.Uint16(params[24:])), int(le.Uint16(params[22:])))
					d.pipeData(ctx, f, st, fid, ToServer, data, short && cut)
				}
			} else if resp && wc >= 10 {
				if p := s.takePending(smbPendRead, key); p != nil && readOK {
					data, short := smbSlice(h, int(le.Uint16(params[14:])), int(le.Uint16(params[12:])))
					d.pipeData(ctx, f, st, p.fid, ToClient, data, short && cut)
					if le.Uint16(params[2:]) > le.Uint16(params[16:])+le.Uint16(params[12:]) {
						s.addPending(*p) // more of the answer follows in another response
					}
				}
			}
		}
		if !andx || wc < 2 {
			return
		}
		next, noff := params[0], int(le.Uint16(params[2:]))
		if next == 0xff || noff <= off || noff >= len(h) {
			return
		}
		cmd, off = next, noff
	}
}

func smb1FID(b []byte) [16]byte {
	var fid [16]byte
	fid[0], fid[1] = b[0], b[1]
	fid[15] = 1 // keeps SMB1 ids apart from SMB2 ones
	return fid
}

// smbSlice returns msg[off:off+n], shortened to what is there, and whether
// it was shortened.
func smbSlice(msg []byte, off, n int) ([]byte, bool) {
	if off <= 0 || n <= 0 || off >= len(msg) {
		return nil, n > 0
	}
	if off+n > len(msg) {
		return msg[off:], true
	}
	return msg[off : off+n], false
}

// pipeData hands bytes written to or read from an SMB file to the DCE/RPC
// reader of its pipe. A file not known as a pipe is taken only when the
// bytes start with a valid PDU header.
func (d *DCERPCDetector) pipeData(ctx *Context, f *Flow, st *dcerpcFlow, fid [16]byte, dir Direction, data []byte, short bool) {
	if len(data) == 0 {
		return
	}
	var ch *rpcChannel
	for _, c := range st.chans {
		if c.fid == fid {
			ch = c
			break
		}
	}
	if ch == nil {
		if coFragLen(data) <= 0 || len(st.chans) >= dcerpcMaxChannels {
			return
		}
		ch = &rpcChannel{fid: fid, pipe: st.smb.nameOf(fid)}
		st.chans = append(st.chans, ch)
	}
	if ch.dead {
		return
	}
	if d.feedChannel(ctx, f, st, ch, dir, data) == chanBad {
		if !st.matched {
			ch.dead = true
			return
		}
		ctx.Counters.CountMalformed(dcerpcName)
		short = true
	}
	if short {
		ch.in[dir].reset()
		ch.lost[dir] = true
	}
	if st.matched && st.ev.Pipe == "" && ch.pipe != "" {
		st.ev.Pipe = ch.pipe
	}
}

// namePipe records the name a CREATE gave to a file id, also for a pipe
// whose traffic was seen before the CREATE's answer.
func (st *dcerpcFlow) namePipe(fid [16]byte, name string) {
	st.smb.addName(fid, name)
	for _, ch := range st.chans {
		if ch.fid == fid && ch.pipe == "" {
			ch.pipe = name
			if st.matched && st.ev.Pipe == "" && !ch.dead {
				st.ev.Pipe = name
			}
		}
	}
}

func (s *smbState) setTree(id uint32, pipe bool) {
	for i := 0; i < s.ntree; i++ {
		if s.trees[i].id == id {
			s.trees[i].pipe = pipe
			return
		}
	}
	if s.ntree < len(s.trees) {
		s.trees[s.ntree] = smbTree{id, pipe}
		s.ntree++
		return
	}
	s.trees[int(id)%len(s.trees)] = smbTree{id, pipe}
}

// tree returns whether tree id is a pipe share, and whether it is known.
func (s *smbState) tree(id uint32) (pipe, known bool) {
	for i := 0; i < s.ntree; i++ {
		if s.trees[i].id == id {
			return s.trees[i].pipe, true
		}
	}
	return false, false
}

func (s *smbState) addPending(p smbPending) {
	p.used = true
	for i := range s.pend {
		if !s.pend[i].used {
			s.pend[i] = p
			return
		}
	}
	s.pend[s.npend] = p
	s.npend = (s.npend + 1) % len(s.pend)
}

func (s *smbState) takePending(kind uint8, key uint64) *smbPending {
	for i := range s.pend {
		if p := &s.pend[i]; p.used && p.kind == kind && p.key == key {
			p.used = false
			return p
		}
	}
	return nil
}

func (s *smbState) addName(fid [16]byte, name string) {
	if name == "" {
		return
	}
	for i := 0; i < s.nname; i++ {
		if s.names[i].fid == fid {
			s.names[i].name = name
			return
		}
	}
	if s.nname < len(s.names) {
		s.names[s.nname] = smbName{fid, name}
		s.nname++
		return
	}
	copy(s.names[:], s.names[1:])
	s.names[len(s.names)-1] = smbName{fid, name}
}

func (s *smbState) nameOf(fid [16]byte) string {
	for i := 0; i < s.nname; i++ {
		if s.names[i].fid == fid {
			return s.names[i].name
		}
	}
	return ""
}

// pipeName decodes a file name from a CREATE (UTF-16LE or ASCII) and trims
// it to the pipe's own name: "\PIPE\samr" and "\samr" become "samr".
func smbPipeName(b []byte, utf16 bool) string {
	var buf [64]byte
	n := 0
	step := 1
	if utf16 {
		step = 2
	}
	for i := 0; i+step <= len(b) && n < len(buf); i += step {
		c := b[i]
		if utf16 && b[i+1] != 0 {
			c = '?'
		}
		if c == 0 {
			break
		}
		if c < 0x20 || c > 0x7e {
			c = '?'
		}
		buf[n] = c
		n++
	}
	name := strings.TrimLeft(string(buf[:n]), `\`)
	if len(name) > 5 && strings.EqualFold(name[:5], `pipe\`) {
		name = name[5:]
	}
	return name
}
