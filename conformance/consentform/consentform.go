// Package consentform reads an MCP server's consent page the way an attacker's script would: it
// parses the HTML form (action, hidden fields, approve and deny buttons) so checks can replay,
// tamper with or cross-post it over plain HTTP (PXY-03, PXY-18).
package consentform

import (
	"bytes"
	"errors"
	"net/url"
	"regexp"
	"strings"

	"golang.org/x/net/html"
)

// Button is a submit control.
type Button struct {
	Name, Value, Label string
}

// Form is the consent form.
type Form struct {
	// Action is the absolute URL the form posts to.
	Action string
	Method string
	// Fields are the form's inputs (hidden and visible, minus submit buttons).
	Fields  url.Values
	Approve *Button
	Deny    *Button
}

// ErrNoForm means the page has no recognisable consent form.
var ErrNoForm = errors.New("no consent form (a form with an approve-like submit button) on the page")

var (
	approveRE = regexp.MustCompile(`(?i)\b(approve|allow|authori[sz]e|accept|grant|consent|continue)\b`)
	denyRE    = regexp.MustCompile(`(?i)\b(deny|reject|decline|cancel|refuse)\b`)
)

// Parse finds the consent form in a page fetched from pageURL.
func Parse(pageURL string, body []byte) (*Form, error) {
	doc, err := html.Parse(bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	base, err := url.Parse(pageURL)
	if err != nil {
		return nil, err
	}
	var forms []*html.Node
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "form" {
			forms = append(forms, n)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	for _, fn := range forms {
		f := parseForm(fn, base)
		if f.Approve != nil {
			return f, nil
		}
	}
	return nil, ErrNoForm
}

func attr(n *html.Node, name string) string {
	for _, a := range n.Attr {
		if strings.EqualFold(a.Key, name) {
			return a.Val
		}
	}
	return ""
}

func text(n *html.Node) string {
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return strings.TrimSpace(b.String())
}

func parseForm(fn *html.Node, base *url.URL) *Form {
	f := &Form{Method: strings.ToUpper(attr(fn, "method")), Fields: url.Values{}}
	if f.Method == "" {
		f.Method = "GET"
	}
	action, err := base.Parse(attr(fn, "action"))
	if err != nil {
		action = base
	}
	f.Action = action.String()
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			typ := strings.ToLower(attr(n, "type"))
			switch {
			case n.Data == "button" && (typ == "" || typ == "submit"), n.Data == "input" && typ == "submit":
				b := &Button{Name: attr(n, "name"), Value: attr(n, "value"), Label: text(n)}
				label := strings.Join([]string{b.Label, b.Value, b.Name, attr(n, "id")}, " ")
				switch {
				case denyRE.MatchString(label):
					if f.Deny == nil {
						f.Deny = b
					}
				case approveRE.MatchString(label):
					if f.Approve == nil {
						f.Approve = b
					}
				}
			case n.Data == "input" && typ != "checkbox" && typ != "radio" && typ != "button" && typ != "image":
				if name := attr(n, "name"); name != "" {
					f.Fields.Add(name, attr(n, "value"))
				}
			case n.Data == "input" && (typ == "checkbox" || typ == "radio"):
				if _, checked := hasAttr(n, "checked"); checked {
					if name := attr(n, "name"); name != "" {
						v := attr(n, "value")
						if v == "" {
							v = "on"
						}
						f.Fields.Add(name, v)
					}
				}
			case n.Data == "textarea":
				if name := attr(n, "name"); name != "" {
					f.Fields.Add(name, text(n))
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(fn)
	return f
}

func hasAttr(n *html.Node, name string) (string, bool) {
	for _, a := range n.Attr {
		if strings.EqualFold(a.Key, name) {
			return a.Val, true
		}
	}
	return "", false
}

// Values is the body a browser would submit when the approve (or deny) button is clicked.
func (f *Form) Values(approve bool) url.Values {
	v := url.Values{}
	for k, vs := range f.Fields {
		v[k] = append([]string(nil), vs...)
	}
	b := f.Approve
	if !approve {
		b = f.Deny
	}
	if b != nil && b.Name != "" {
		v.Set(b.Name, b.Value)
	}
	return v
}
