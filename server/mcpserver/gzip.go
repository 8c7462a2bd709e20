package mcpserver

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"hash/crc32"
	"slices"
	"strconv"
	"strings"
)

// gzip of the tools/list answer.
//
// The answer is mcp-go's envelope (prefix, e.g. `{"jsonrpc":"2.0","id":7,"result":{`, and suffix)
// around the cached tools array, and the envelope changes with every request (its id). So the tools
// array is deflated once, when the server is built, into blocks that end byte-aligned with a sync
// flush and refer to nothing before them; each answer is then a gzip member made of
//
//	gzip header | prefix as a stored block | the precompressed array | suffix as the final stored block | CRC-32, size
//
// which any inflater reads as one deflate stream (RFC 1951: blocks are independent of where they came
// from; back-references reach only into the array's own bytes). Per request that costs copying the
// ~6 KB of compressed bytes and a CRC-32 of the envelope's few dozen bytes, combined with the array's
// CRC precomputed (crc32Combine): no compressor runs per request.
type gzipSplice struct {
	mid    []byte // raw deflate blocks of the array, not final, byte-aligned (sync flush)
	midCRC uint32 // CRC-32 (IEEE) of the uncompressed array
	midLen int    // its uncompressed length
	shift  uint32 // crc32 combine operator for midLen bytes
}

func newGzipSplice(data []byte) (*gzipSplice, error) {
	var buf bytes.Buffer
	fw, err := flate.NewWriter(&buf, flate.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := fw.Write(data); err != nil {
		return nil, err
	}
	if err := fw.Flush(); err != nil { // sync flush: ends with an empty stored block, byte-aligned
		return nil, err
	}
	return &gzipSplice{mid: buf.Bytes(), midCRC: crc32.ChecksumIEEE(data), midLen: len(data), shift: crc32CombineOp(len(data))}, nil
}

// gzipHeader: magic, CM=deflate, no flags, no mtime, XFL 0, OS unknown (255), as compress/gzip
// writes it when no header field is set.
var gzipHeader = []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255}

// size is the length of the member appendTo produces for prefix and suffix.
func (g *gzipSplice) size(prefix, suffix []byte) int {
	return len(gzipHeader) + storedLen(len(prefix), false) + len(g.mid) + storedLen(len(suffix), true) + 8
}

// appendTo appends the gzip member of prefix + the array + suffix to dst.
func (g *gzipSplice) appendTo(dst, prefix, suffix []byte) []byte {
	dst = slices.Grow(dst, g.size(prefix, suffix))
	dst = append(dst, gzipHeader...)
	dst = appendStored(dst, prefix, false)
	dst = append(dst, g.mid...)
	dst = appendStored(dst, suffix, true)
	crc := crc32.ChecksumIEEE(prefix)
	crc = crc32MultModP(g.shift, crc) ^ g.midCRC // CRC-32 of prefix + array
	crc = crc32.Update(crc, crc32.IEEETable, suffix)
	dst = binary.LittleEndian.AppendUint32(dst, crc)
	return binary.LittleEndian.AppendUint32(dst, uint32(len(prefix)+g.midLen+len(suffix)))
}

const maxStored = 65535

// storedLen is the encoded length of p bytes as stored blocks (at least one block, so the final
// flag has a block to sit on).
func storedLen(n int, final bool) int {
	blocks := (n + maxStored - 1) / maxStored
	if blocks == 0 {
		if !final {
			return 0 // nothing to store and nothing to end
		}
		blocks = 1
	}
	return n + 5*blocks
}

// appendStored appends p as stored deflate blocks (RFC 1951 §3.2.4), the last one final if final.
// The stream is byte-aligned before and after.
func appendStored(dst, p []byte, final bool) []byte {
	if len(p) == 0 && !final {
		return dst
	}
	for {
		n := min(len(p), maxStored)
		var bfinal byte
		if final && n == len(p) {
			bfinal = 1
		}
		dst = append(dst, bfinal, byte(n), byte(n>>8), ^byte(n), ^byte(n>>8))
		dst = append(dst, p[:n]...)
		p = p[n:]
		if len(p) == 0 {
			return dst
		}
	}
}

// CRC-32 combination (as zlib's crc32_combine): CRC(A‖B) = (CRC(A) · x^(8·len(B)) mod P) ⊕ CRC(B),
// in the reflected bit order of the IEEE polynomial.

// crc32MultModP multiplies a and b modulo the CRC-32 polynomial.
func crc32MultModP(a, b uint32) uint32 {
	if a == 0 {
		return 0
	}
	m := uint32(1) << 31
	var p uint32
	for {
		if a&m != 0 {
			p ^= b
			if a&(m-1) == 0 {
				return p
			}
		}
		m >>= 1
		if b&1 != 0 {
			b = b>>1 ^ crc32.IEEE
		} else {
			b >>= 1
		}
	}
}

// crc32CombineOp returns x^(8·n) mod P, the operator that shifts a CRC over n zero bytes.
func crc32CombineOp(n int) uint32 {
	p := uint32(1) << 31  // x^0
	sq := uint32(1) << 30 // x^1
	// x^(8n) = product of x^(2^k) over the set bits k of 8n.
	for e := uint64(n) << 3; e != 0; e >>= 1 {
		if e&1 != 0 {
			p = crc32MultModP(sq, p)
		}
		sq = crc32MultModP(sq, sq)
	}
	return p
}

// acceptsGzip reports whether a request's Accept-Encoding values (RFC 9110 §12.5.3) let the answer
// be gzip-compressed: gzip (or its alias x-gzip), or else `*`, is listed with a weight above 0, and
// identity is not explicitly preferred by a higher weight (`identity;q=1, gzip;q=0.5`; identity
// unlisted counts as the lowest choice). No header, an empty one, `gzip;q=0` and a malformed weight
// mean no gzip: identity is always acceptable to send.
func acceptsGzip(values []string) bool {
	gz, star, id := -1, -1, -1 // weights in thousandths; -1: not listed
	for _, v := range values {
		for elem := range strings.SplitSeq(v, ",") {
			coding, params, _ := strings.Cut(elem, ";")
			coding = strings.TrimSpace(coding)
			if coding == "" {
				continue
			}
			q := parseWeight(params)
			switch {
			case strings.EqualFold(coding, "gzip"), strings.EqualFold(coding, "x-gzip"):
				gz = max(gz, q)
			case coding == "*":
				star = max(star, q)
			case strings.EqualFold(coding, "identity"):
				id = max(id, q)
			}
		}
	}
	if gz < 0 {
		gz = star
	}
	if id < 0 {
		id = star
	}
	return gz > 0 && gz >= id
}

// parseWeight returns the weight of `;q=0.5`-style parameters in thousandths: 1000 without a q
// parameter, 0 when it is malformed (RFC 9110 §12.4.2: "0" ["." 0*3DIGIT] or "1" ["." 0*3"0"]).
func parseWeight(params string) int {
	q := 1000
	for params != "" {
		var p string
		p, params, _ = strings.Cut(params, ";")
		name, val, _ := strings.Cut(strings.TrimSpace(p), "=")
		if !strings.EqualFold(strings.TrimSpace(name), "q") {
			continue
		}
		q = qvalue(strings.TrimSpace(val))
	}
	return q
}

func qvalue(s string) int {
	if s == "" || len(s) > 5 || (s[0] != '0' && s[0] != '1') {
		return 0
	}
	whole := int(s[0] - '0')
	if len(s) == 1 {
		return whole * 1000
	}
	if s[1] != '.' {
		return 0
	}
	frac := s[2:]
	for _, c := range frac {
		if c < '0' || c > '9' {
			return 0
		}
	}
	for len(frac) < 3 {
		frac += "0"
	}
	n, _ := strconv.Atoi(frac)
	if whole == 1 && n != 0 {
		return 0 // above 1
	}
	return whole*1000 + n
}
