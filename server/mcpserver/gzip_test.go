package mcpserver

import (
	"bytes"
	"compress/gzip"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"testing"
)

// The spliced member is a valid gzip stream (compress/gzip checks the CRC-32 and the size) of
// prefix + data + suffix, for empty, small and large (several stored blocks) envelopes and data.
func TestGzipSplice(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rnd.IntN(256))
		}
		return b
	}
	json := bytes.Repeat([]byte(`{"name":"list_postgres_clusters","inputSchema":{"type":"object"}},`), 700)
	for _, tc := range []struct {
		name                 string
		prefix, data, suffix []byte
	}{
		{"envelope", []byte(`{"jsonrpc":"2.0","id":7,"result":{`), json, []byte(`}}`)},
		{"empty envelope", nil, json, nil},
		{"empty prefix", nil, json, []byte("}\n")},
		{"empty suffix", []byte("{"), json, nil},
		{"empty data", []byte(`{"a":`), nil, []byte(`1}`)},
		{"all empty", nil, nil, nil},
		{"incompressible data", []byte("p"), random(100_000), []byte("s")},
		{"envelope over one stored block", random(maxStored + 1), []byte("mid"), random(2*maxStored + 7)},
		{"envelope of exactly one stored block", random(maxStored), json, random(maxStored)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, err := newGzipSplice(tc.data)
			if err != nil {
				t.Fatal(err)
			}
			out := g.appendTo([]byte("x"), tc.prefix, tc.suffix)[1:]
			if len(out) != g.size(tc.prefix, tc.suffix) {
				t.Fatalf("size %d, appended %d", g.size(tc.prefix, tc.suffix), len(out))
			}
			br := bytes.NewReader(out)
			zr, err := gzip.NewReader(br)
			if err != nil {
				t.Fatal(err)
			}
			zr.Multistream(false)
			got, err := io.ReadAll(zr)
			if err != nil {
				t.Fatal(err)
			}
			want := append(append(append([]byte{}, tc.prefix...), tc.data...), tc.suffix...)
			if !bytes.Equal(got, want) || br.Len() != 0 {
				t.Fatalf("decoded %d bytes (%d left over), want %d", len(got), br.Len(), len(want))
			}
			// A corrupted CRC is refused: the reader really checks what appendTo computed.
			out[len(out)-5] ^= 1
			zr, err = gzip.NewReader(bytes.NewReader(out))
			if err == nil {
				_, err = io.ReadAll(zr)
			}
			if err == nil {
				t.Fatal("corrupted CRC accepted")
			}
		})
	}
}

func TestCRC32Combine(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{0, 1, 2, 7, 64, 1000, 43_292, 1 << 20} {
		a, b := make([]byte, rnd.IntN(50)), make([]byte, n)
		for i := range b {
			b[i] = byte(rnd.Uint32())
		}
		got := crc32MultModP(crc32CombineOp(n), crc32.ChecksumIEEE(a)) ^ crc32.ChecksumIEEE(b)
		if want := crc32.ChecksumIEEE(append(a, b...)); got != want {
			t.Errorf("n=%d: combined %08x, want %08x", n, got, want)
		}
	}
}

func TestAcceptsGzip(t *testing.T) {
	for _, tc := range []struct {
		values []string
		want   bool
	}{
		{nil, false},                      // no header: no preference stated; identity is sent
		{[]string{""}, false},             // empty: identity only
		{[]string{"gzip"}, true},          // Go's http.Transport
		{[]string{"gzip, deflate"}, true}, // Node's fetch: gzip, deflate (, br)
		{[]string{"br, gzip, deflate"}, true},
		{[]string{"GZIP"}, true},
		{[]string{"x-gzip"}, true},
		{[]string{"deflate", "gzip"}, true}, // the header sent twice
		{[]string{"gzip;q=0"}, false},
		{[]string{"gzip; q=0"}, false},
		{[]string{"gzip;Q=0.000"}, false},
		{[]string{"gzip;q=0, *"}, false}, // refused by name: * does not bring it back
		{[]string{"*;q=0, gzip"}, true},
		{[]string{"*"}, true},
		{[]string{"*;q=0"}, false},
		{[]string{"*;q=0.5, identity;q=1"}, false}, // identity preferred
		{[]string{"gzip;q=0.5, identity;q=1"}, false},
		{[]string{"gzip;q=1, identity;q=1"}, true}, // a tie: the smaller one
		{[]string{"gzip;q=0.5"}, true},             // identity unlisted counts last
		{[]string{"gzip;q=0.001"}, true},
		{[]string{"identity"}, false},
		{[]string{"identity;q=0"}, false}, // nothing acceptable: identity is sent anyway
		{[]string{"deflate, br"}, false},
		{[]string{"gzipx"}, false},
		{[]string{"gzip;q=2"}, false}, // malformed weights do not count as acceptance
		{[]string{"gzip;q=1.5"}, false},
		{[]string{"gzip;q=0.0001"}, false},
		{[]string{"gzip;q=abc"}, false},
		{[]string{"gzip;q="}, false},
		{[]string{"gzip;q=1.000"}, true},
		{[]string{"gzip;level=9"}, true}, // other parameters are ignored
		{[]string{" , ,gzip ,"}, true},
	} {
		if got := acceptsGzip(tc.values); got != tc.want {
			t.Errorf("Accept-Encoding %q: gzip %v, want %v", tc.values, got, tc.want)
		}
	}
}
