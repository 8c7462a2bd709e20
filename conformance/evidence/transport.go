package evidence

import (
	"bytes"
	"io"
	"net/http"
	"time"
)

// Transport records every round trip into a Record.
type Transport struct {
	Base   http.RoundTripper
	Record *Record
}

const maxCapture = 1 << 20

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	ex := Exchange{Label: labelFrom(req.Context()), Time: time.Now()}
	ex.Request = Request{Method: req.Method, URL: RedactURL(req.URL.String()), Header: RedactHeader(req.Header)}
	if req.Body != nil && req.GetBody != nil {
		if rc, err := req.GetBody(); err == nil {
			b, _ := io.ReadAll(io.LimitReader(rc, maxCapture))
			_ = rc.Close()
			body, toks := RedactBody(req.Header.Get("Content-Type"), b)
			ex.Request.Body = body
			ex.Tokens = append(ex.Tokens, toks...)
		}
	}
	resp, err := base.RoundTrip(req)
	ex.DurationMS = float64(time.Since(ex.Time).Microseconds()) / 1000
	if err != nil {
		ex.Error = err.Error()
		t.Record.AddExchange(ex)
		return nil, err
	}
	b, readErr := io.ReadAll(io.LimitReader(resp.Body, maxCapture))
	_ = resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(b))
	if readErr != nil {
		ex.Error = "reading the response body: " + readErr.Error()
	}
	body, toks := RedactBody(resp.Header.Get("Content-Type"), b)
	ex.Response = &Response{Status: resp.StatusCode, Header: RedactHeader(resp.Header), Body: body}
	ex.Tokens = append(ex.Tokens, toks...)
	t.Record.AddExchange(ex)
	return resp, nil
}
