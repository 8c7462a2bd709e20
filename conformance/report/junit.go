package report

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
)

type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Time       string          `xml:"time,attr"`
	Properties []junitProperty `xml:"properties>property,omitempty"`
	Cases      []junitCase     `xml:"testcase"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name       string          `xml:"name,attr"`
	Classname  string          `xml:"classname,attr"`
	Time       string          `xml:"time,attr"`
	Properties []junitProperty `xml:"properties>property,omitempty"`
	Failure    *junitMessage   `xml:"failure,omitempty"`
	Skipped    *junitMessage   `xml:"skipped,omitempty"`
	SystemOut  string          `xml:"system-out,omitempty"`
}

type junitMessage struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr,omitempty"`
	Text    string `xml:",chardata"`
}

func secs(ms float64) string { return fmt.Sprintf("%.3f", ms/1000) }

// WriteJUnit writes the run as JUnit XML: one testsuite per catalogue section, one testcase per
// check named "ID [LEVEL] title". Warnings pass and are listed in system-out; SHOULD/MAY/info
// failures are failures of type "SHOULD" etc., so CI can tell them from MUST failures.
func WriteJUnit(w io.Writer, run *Run) error {
	out := junitSuites{Name: "mcp-auth-conformance " + run.Target, Time: secs(run.DurationMS)}
	bySection := map[string]*junitSuite{}
	var order []string
	for _, r := range run.Results {
		s := bySection[r.Section]
		if s == nil {
			s = &junitSuite{Name: r.Section, Properties: []junitProperty{{Name: "target", Value: run.Target}, {Name: "specVersion", Value: run.SpecVersion}}}
			bySection[r.Section] = s
			order = append(order, r.Section)
		}
		c := junitCase{Name: fmt.Sprintf("%s [%s] %s", r.ID, r.Level, r.Title), Classname: r.Area, Time: secs(r.DurationMS),
			Properties: []junitProperty{{Name: "id", Value: r.ID}, {Name: "level", Value: string(r.Level)}, {Name: "status", Value: string(r.Status)}}}
		var outLines []string
		for _, n := range r.Evidence.Notes {
			outLines = append(outLines, "note: "+n)
		}
		for _, wmsg := range r.Warnings {
			outLines = append(outLines, "WARN: "+wmsg)
		}
		switch r.Status {
		case Fail:
			c.Failure = &junitMessage{Message: r.Message(), Type: string(r.Level), Text: strings.Join(r.Failures, "\n") + "\n\nrequirement: " + r.Requirement}
			s.Failures++
			out.Failures++
		case Skip:
			c.Skipped = &junitMessage{Message: r.Message()}
			s.Skipped++
			out.Skipped++
		case Inconclusive:
			c.Skipped = &junitMessage{Message: "inconclusive: " + r.Message()}
			s.Skipped++
			out.Skipped++
		}
		if len(r.Evidence.Exchanges) > 0 {
			b, _ := json.MarshalIndent(r.Evidence.Exchanges, "", "  ")
			outLines = append(outLines, "exchanges: "+string(b))
		}
		c.SystemOut = strings.Join(outLines, "\n")
		s.Cases = append(s.Cases, c)
		s.Tests++
		out.Tests++
	}
	for _, name := range order {
		s := bySection[name]
		var ms float64
		for _, c := range s.Cases {
			var v float64
			fmt.Sscanf(c.Time, "%f", &v)
			ms += v * 1000
		}
		s.Time = secs(ms)
		out.Suites = append(out.Suites, *s)
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(out); err != nil {
		return fmt.Errorf("write JUnit XML: %w", err)
	}
	_, err := io.WriteString(w, "\n")
	return err
}

// WriteJSON writes the run as indented JSON.
func WriteJSON(w io.Writer, run *Run) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(run)
}
