package peerbench

import (
	"strings"
	"testing"
	"time"
)

func TestResult(t *testing.T) {
	for _, tc := range []struct {
		name, body, want, err string
	}{
		{"json", `{"jsonrpc":"2.0","id":1,"result":{"tools":[]}}`, `{"tools":[]}`, ""},
		{"sse", "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n", `{}`, ""},
		{"sse with id and CRLF", "id: 7\r\nevent: message\r\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"a\":1}}\r\n\r\n", `{"a":1}`, ""},
		{"error", `{"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"nope"}}`, "", "JSON-RPC error -32601"},
		{"no result", `{"jsonrpc":"2.0","id":1}`, "", "no result"},
		{"not JSON", `<html>`, "", "not a JSON-RPC answer"},
	} {
		got, err := Result([]byte(tc.body))
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.err)
		case tc.err == "" && (err != nil || string(got) != tc.want):
			t.Errorf("%s: %s, %v; want %s", tc.name, got, err, tc.want)
		}
	}
}

// m is a run of n requests in elapsed seconds that cost cpu milliseconds of server CPU.
func m(round int, target, method string, c, n int, elapsed float64, cpuMS int) Measurement {
	return Measurement{Round: round, Target: target, Method: method, Concurrency: c, Requests: n,
		Elapsed: time.Duration(elapsed * float64(time.Second)), CPU: time.Duration(cpuMS) * time.Millisecond}
}

func TestCompareAndVerdicts(t *testing.T) {
	ms := []Measurement{
		// round 1: ours 1000 req/s, peer 200 req/s (5×); CPU 100 vs 800 ms per 1000 (8×)
		m(1, "ours", "tools/list", 1, 1000, 1, 100), m(1, "peer", "tools/list", 1, 1000, 5, 800),
		// round 2: 3×; round 3: 4×
		m(2, "ours", "tools/list", 1, 1000, 1, 100), m(2, "peer", "tools/list", 1, 1000, 3, 600),
		m(3, "ours", "tools/list", 1, 1000, 1, 100), m(3, "peer", "tools/list", 1, 1000, 4, 700),
		// ping: 1.5× in the one round
		m(1, "ours", "ping", 1, 300, 1, 10), m(1, "peer", "ping", 1, 200, 1, 10),
		// another target is not part of the comparison
		m(1, "other", "tools/list", 1, 1, 100, 1),
	}
	r := Compare(ms, Comparison{Ours: "ours", Peer: "peer"})
	got := r[key{"tools/list", 1}]
	if got.Throughput != 4 || got.Min != 3 || got.Max != 5 || got.CPU != 7 || got.Rounds != 3 {
		t.Errorf("tools/list: %+v, want median 4× (3–5), CPU 7×, 3 rounds", got)
	}
	v := Verdicts(ms, []Goal{
		{Name: "list", Compare: Comparison{"ours", "peer"}, Methods: []string{"tools/list"}, Factor: 3},
		{Name: "both", Compare: Comparison{"ours", "peer"}, Methods: []string{"tools/list", "ping"}, Factor: 3},
		{Name: "none", Compare: Comparison{"ours", "nobody"}, Methods: []string{"tools/list"}, Factor: 3},
	})
	if !strings.Contains(v[0], ": MET") || !strings.Contains(v[1], "NOT MET") || !strings.Contains(v[1], "ping c=1 1.5× MISSED") ||
		!strings.Contains(v[2], "not measured") {
		t.Errorf("verdicts:\n%s", strings.Join(v, "\n"))
	}
	table := RatioTable(ms, []Comparison{{"ours", "peer"}})
	if !strings.Contains(table, "| tools/list c=1 | 4.0× (3.0–5.0), CPU 7.0× |") {
		t.Errorf("ratio table:\n%s", table)
	}
	abs := AbsoluteTable(ms, []string{"ours", "peer"})
	if !strings.Contains(abs, "| tools/list c=1 | peer | 250 |") {
		t.Errorf("absolute table (median of 200, 250, 333 req/s is 250):\n%s", abs)
	}
}
