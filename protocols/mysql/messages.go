package mysql

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Capability flags (the subset Bastion uses or refuses).
const (
	capLongPassword     = 1 << 0
	capFoundRows        = 1 << 1
	capLongFlag         = 1 << 2
	capConnectWithDB    = 1 << 3
	capCompress         = 1 << 5
	capLocalFiles       = 1 << 7
	capProtocol41       = 1 << 9
	capSSL              = 1 << 11
	capTransactions     = 1 << 13
	capSecureConnection = 1 << 15
	capMultiStatements  = 1 << 16
	capMultiResults     = 1 << 17
	capPSMultiResults   = 1 << 18
	capPluginAuth       = 1 << 19
	capConnectAttrs     = 1 << 20
	capPluginAuthLenEnc = 1 << 21
	capSessionTrack     = 1 << 23
	capDeprecateEOF     = 1 << 24
)

// serverCaps are the capabilities Bastion offers clients. Both MariaDB
// (10.2 on) and MySQL (5.7 on) servers have them all, so a client's choice
// among them can be passed upstream unchanged. Left out: compression,
// LOCAL INFILE (refused), MariaDB's extended capabilities.
const serverCaps = capLongPassword | capFoundRows | capLongFlag | capConnectWithDB | capProtocol41 |
	capTransactions | capSecureConnection | capMultiStatements | capMultiResults | capPSMultiResults |
	capPluginAuth | capConnectAttrs | capPluginAuthLenEnc | capSessionTrack | capDeprecateEOF

// requiredCaps are what a client must speak.
const requiredCaps = capProtocol41 | capSecureConnection

// Commands.
const (
	comQuit             = 0x01
	comInitDB           = 0x02
	comQuery            = 0x03
	comFieldList        = 0x04
	comStatistics       = 0x09
	comPing             = 0x0e
	comChangeUser       = 0x11
	comBinlogDump       = 0x12
	comRegisterSlave    = 0x15
	comStmtPrepare      = 0x16
	comStmtExecute      = 0x17
	comStmtSendLongData = 0x18
	comStmtClose        = 0x19
	comStmtReset        = 0x1a
	comSetOption        = 0x1b
	comStmtFetch        = 0x1c
	comBinlogDumpGTID   = 0x1e
	comResetConnection  = 0x1f
)

// Response headers.
const (
	iOK          = 0x00
	iLocalInfile = 0xfb
	iEOF         = 0xfe
	iERR         = 0xff
)

// Server status flags.
const (
	statusInTrans         = 0x0001
	statusAutocommit      = 0x0002
	statusMoreResults     = 0x0008
	statusCursorExists    = 0x0040
	statusLastRowSent     = 0x0080
	statusNoBackslashEsc  = 0x0200
	statusSessionStateChg = 0x4000
)

// Authentication plugins.
const (
	pluginNative     = "mysql_native_password"
	pluginCachingSHA = "caching_sha2_password"
)

// Error numbers and SQL states Bastion answers with. All are in the
// server's range (1000–1999): a code of the client's range (2000–2999, such
// as 2003 "Can't connect") in a server's ERR packet makes libmariadb report
// "malformed packet" instead of the message. The target's own errors are
// relayed with their codes.
const (
	erAccessDenied           = 1045 // 28000: a failed login
	erDBAccessDenied         = 1044 // 42000: another database
	erTableAccessDenied      = 1142 // 42000: a statement a rule denies
	erUnknownCom             = 1047 // 08S01: a command Bastion refuses
	erNotAllowedCommand      = 1148 // 42000: LOAD DATA LOCAL
	erHandshake              = 1043 // 08S01: a malformed handshake
	erConnKilled             = 1927 // 70100: the grant ended (MariaDB's ER_CONNECTION_KILLED)
	erTooLarge               = 1153 // 08S01: a packet over the limit
	erServerShutdown         = 1053 // 08S01
	erUnknownError           = 1105 // HY000: the session cannot be recorded or audited now
	erCannotConnect          = 1429 // HY000: the target is unreachable (ER_CONNECT_TO_FOREIGN_DATA_SOURCE)
	erNotSupportedAuth       = 1251 // 08004: the target asks for its password where Bastion does not send it
	erAccessDeniedNoPassword = 1698 // 28000: the target's refusal of an account without a password
	erNetReadInterrupted     = 1159 // 08S01: idle timeout
	erUnknownCharset         = 1115 // 42000: a character set Bastion cannot check statements in
	erConCount               = 1040 // 08004: the user has too many connections open
)

// backslashCollation reports whether a handshake's collation belongs to a
// character set with multibyte characters whose second byte is 0x5c (see
// mysqlsql.BackslashCharset): big5, sjis, gbk, cp932, gb18030.
func backslashCollation(id byte) bool {
	switch id {
	case 1, 84, 13, 88, 28, 87, 95, 96, 248, 249, 250:
		return true
	}
	return false
}

// errPacket builds an ERR packet's payload.
func errPacket(code uint16, state, msg string) []byte {
	b := make([]byte, 0, 9+len(msg))
	b = append(b, iERR, byte(code), byte(code>>8), '#')
	b = append(b, state...)
	return append(b, msg...)
}

// okPacket builds an OK packet's payload with no rows and the given status.
func okPacket(status uint16) []byte {
	return []byte{iOK, 0, 0, byte(status), byte(status >> 8), 0, 0}
}

// parseErr reads an ERR packet's code and message.
func parseErr(p []byte) (uint16, string) {
	if len(p) < 3 || p[0] != iERR {
		return 0, "malformed error"
	}
	code := binary.LittleEndian.Uint16(p[1:])
	msg := p[3:]
	if len(msg) >= 6 && msg[0] == '#' {
		msg = msg[6:]
	}
	return code, string(msg)
}

// okInfo reads an OK packet's affected rows and status flags.
func okInfo(p []byte) (affected uint64, status uint16, ok bool) {
	if len(p) < 1 {
		return 0, 0, false
	}
	affected, n, _, ok1 := readLenEnc(p[1:])
	if !ok1 {
		return 0, 0, false
	}
	_, m, _, ok2 := readLenEnc(p[1+n:])
	if !ok2 || len(p) < 1+n+m+2 {
		return 0, 0, false
	}
	return affected, binary.LittleEndian.Uint16(p[1+n+m:]), true
}

// eofStatus reads a (pre-4.1-deprecation) EOF packet's status flags.
func eofStatus(p []byte) uint16 {
	if len(p) >= 5 {
		return binary.LittleEndian.Uint16(p[3:])
	}
	return 0
}

// handshakeV10 is the server's greeting.
type handshakeV10 struct {
	version string
	connID  uint32
	nonce   []byte // 20 bytes
	caps    uint32
	charset byte
	status  uint16
	plugin  string
}

func (h *handshakeV10) marshal() []byte {
	b := []byte{10}
	b = append(b, h.version...)
	b = append(b, 0)
	b = binary.LittleEndian.AppendUint32(b, h.connID)
	b = append(b, h.nonce[:8]...)
	b = append(b, 0)
	b = binary.LittleEndian.AppendUint16(b, uint16(h.caps))
	b = append(b, h.charset)
	b = binary.LittleEndian.AppendUint16(b, h.status)
	b = binary.LittleEndian.AppendUint16(b, uint16(h.caps>>16))
	b = append(b, byte(len(h.nonce)+1))
	b = append(b, make([]byte, 10)...)
	b = append(b, h.nonce[8:]...)
	b = append(b, 0)
	b = append(b, h.plugin...)
	return append(b, 0)
}

var errMalformed = errors.New("mysql: malformed packet")

func parseHandshakeV10(p []byte) (*handshakeV10, error) {
	if len(p) < 1 {
		return nil, errMalformed
	}
	if p[0] == iERR {
		code, msg := parseErr(p)
		return nil, fmt.Errorf("mysql: server refused the connection: %d %s", code, msg)
	}
	if p[0] != 10 {
		return nil, fmt.Errorf("mysql: protocol version %d, want 10", p[0])
	}
	h := &handshakeV10{}
	v, n, ok := readNulString(p[1:])
	if !ok {
		return nil, errMalformed
	}
	h.version = string(v)
	rest := p[1+n:]
	if len(rest) < 4+8+1+2 {
		return nil, errMalformed
	}
	h.connID = binary.LittleEndian.Uint32(rest)
	h.nonce = append([]byte(nil), rest[4:12]...)
	rest = rest[13:]
	h.caps = uint32(binary.LittleEndian.Uint16(rest))
	rest = rest[2:]
	if len(rest) < 1+2+2+1+10 {
		return h, nil
	}
	h.charset = rest[0]
	h.status = binary.LittleEndian.Uint16(rest[1:])
	h.caps |= uint32(binary.LittleEndian.Uint16(rest[3:])) << 16
	authLen := int(rest[5])
	rest = rest[16:]
	if h.caps&capSecureConnection != 0 {
		n := max(13, authLen-8)
		if len(rest) < n {
			return nil, errMalformed
		}
		part := rest[:n]
		if i := indexNul(part); i >= 0 {
			part = part[:i]
		}
		h.nonce = append(h.nonce, part...)
		rest = rest[n:]
	}
	if h.caps&capPluginAuth != 0 {
		name, _, ok := readNulString(rest)
		if !ok {
			name = rest
		}
		h.plugin = string(name)
	}
	return h, nil
}

func indexNul(b []byte) int {
	for i, c := range b {
		if c == 0 {
			return i
		}
	}
	return -1
}

// handshakeResponse is the client's HandshakeResponse41 (or, when ssl is
// set and user empty, its SSLRequest).
type handshakeResponse struct {
	caps     uint32
	maxPkt   uint32
	charset  byte
	user     string
	auth     []byte
	database string
	plugin   string
	attrs    []byte // raw connection attributes, when sent
}

// sslRequestLen is the length of an SSLRequest: the first 32 bytes of a
// HandshakeResponse41.
const sslRequestLen = 32

func parseHandshakeResponse(p []byte) (*handshakeResponse, error) {
	if len(p) < sslRequestLen {
		return nil, errMalformed
	}
	r := &handshakeResponse{
		caps:    binary.LittleEndian.Uint32(p),
		maxPkt:  binary.LittleEndian.Uint32(p[4:]),
		charset: p[8],
	}
	if r.caps&capProtocol41 == 0 {
		return nil, errors.New("mysql: the client does not speak protocol 4.1")
	}
	if len(p) == sslRequestLen {
		return r, nil
	}
	rest := p[sslRequestLen:]
	user, n, ok := readNulString(rest)
	if !ok {
		return nil, errMalformed
	}
	r.user = string(user)
	rest = rest[n:]
	switch {
	case r.caps&capPluginAuthLenEnc != 0:
		a, n, ok := readLenEncString(rest)
		if !ok {
			return nil, errMalformed
		}
		r.auth, rest = a, rest[n:]
	case r.caps&capSecureConnection != 0:
		if len(rest) < 1 || len(rest) < 1+int(rest[0]) {
			return nil, errMalformed
		}
		r.auth, rest = rest[1:1+int(rest[0])], rest[1+int(rest[0]):]
	default:
		a, n, ok := readNulString(rest)
		if !ok {
			return nil, errMalformed
		}
		r.auth, rest = a, rest[n:]
	}
	r.auth = append([]byte(nil), r.auth...)
	if r.caps&capConnectWithDB != 0 && len(rest) > 0 {
		db, n, ok := readNulString(rest)
		if !ok {
			return nil, errMalformed
		}
		r.database, rest = string(db), rest[n:]
	}
	if r.caps&capPluginAuth != 0 && len(rest) > 0 {
		name, n, ok := readNulString(rest)
		if !ok {
			name, n = rest, len(rest)
		}
		r.plugin, rest = string(name), rest[n:]
	}
	if r.caps&capConnectAttrs != 0 && len(rest) > 0 {
		a, _, ok := readLenEncString(rest)
		if !ok {
			return nil, errMalformed
		}
		r.attrs = append([]byte(nil), a...)
	}
	return r, nil
}

func (r *handshakeResponse) marshal() []byte {
	b := binary.LittleEndian.AppendUint32(nil, r.caps)
	b = binary.LittleEndian.AppendUint32(b, r.maxPkt)
	b = append(b, r.charset)
	b = append(b, make([]byte, 23)...)
	if r.user == "" && len(r.auth) == 0 && r.caps&capSSL != 0 && r.plugin == "" {
		return b // an SSLRequest
	}
	b = append(b, r.user...)
	b = append(b, 0)
	switch {
	case r.caps&capPluginAuthLenEnc != 0:
		b = appendLenEnc(b, uint64(len(r.auth)))
		b = append(b, r.auth...)
	case r.caps&capSecureConnection != 0:
		b = append(b, byte(len(r.auth)))
		b = append(b, r.auth[:min(len(r.auth), 255)]...)
	default:
		b = append(b, r.auth...)
		b = append(b, 0)
	}
	if r.caps&capConnectWithDB != 0 {
		b = append(b, r.database...)
		b = append(b, 0)
	}
	if r.caps&capPluginAuth != 0 {
		b = append(b, r.plugin...)
		b = append(b, 0)
	}
	if r.caps&capConnectAttrs != 0 {
		b = appendLenEnc(b, uint64(len(r.attrs)))
		b = append(b, r.attrs...)
	}
	return b
}
