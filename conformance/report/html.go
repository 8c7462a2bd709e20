package report

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"strings"
	"time"

	"github.com/cnpg-mcp/cnpg-mcp/conformance/catalogue"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/evidence"
)

type htmlCell struct {
	Results []Result
}

type htmlRow struct {
	Section string
	Cells   []htmlCell // by level, in htmlLevels order
}

type htmlPage struct {
	Run       *Run
	Counts    Counts
	Levels    []catalogue.Level
	Rows      []htmlRow
	Results   []Result
	Generated string
	Duration  string
	Passed    bool
	// Failed is the failed preflight step (nil when the gate passed).
	Failed *PreflightStep
}

var htmlLevels = []catalogue.Level{catalogue.LevelMust, catalogue.LevelShould, catalogue.LevelMay, catalogue.LevelInfo}

var funcs = template.FuncMap{
	"png": func(b []byte) template.URL {
		return template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(b))
	},
	"json": func(v any) string {
		b, _ := json.MarshalIndent(v, "", "  ")
		return string(b)
	},
	"ms": func(v float64) string {
		return time.Duration(v * float64(time.Millisecond)).Round(time.Millisecond).String()
	},
	"headers": func(h map[string][]string) string {
		var b strings.Builder
		for k, vs := range h {
			for _, v := range vs {
				fmt.Fprintf(&b, "%s: %s\n", k, v)
			}
		}
		return b.String()
	},
	"lower":  func(s Status) string { return string(s) },
	"anchor": func(id string) string { return "check-" + id },
	"tokens": func(ts []evidence.Token) []evidence.Token { return ts },
}

var page = template.Must(template.New("report").Funcs(funcs).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>MCP authorization conformance — {{.Run.Target}}</title>
<style>
:root{--pass:#1a7f37;--fail:#cf222e;--warn:#9a6700;--skip:#6e7781;--inconclusive:#8250df;--bg:#f6f8fa;--line:#d0d7de}
*{box-sizing:border-box}body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1f2328}
header{padding:20px 28px;border-bottom:1px solid var(--line);background:var(--bg)}
h1{font-size:20px;margin:0 0 6px}h2{font-size:17px;margin:28px 0 10px}main{padding:0 28px 40px}
.verdict{display:inline-block;padding:3px 10px;border-radius:12px;color:#fff;font-weight:600}
.verdict.pass{background:var(--pass)}.verdict.fail{background:var(--fail)}
.counts span{margin-right:14px}.counts b{font-size:16px}
table.matrix{border-collapse:collapse;width:100%;margin-top:8px}
.matrix th,.matrix td{border:1px solid var(--line);padding:6px 8px;vertical-align:top;text-align:left}
.matrix th{background:var(--bg);font-weight:600}
.b{display:inline-block;margin:2px 3px 2px 0;padding:1px 6px;border-radius:4px;font:12px ui-monospace,SFMono-Regular,Menlo,monospace;text-decoration:none;color:#fff}
.b.pass{background:var(--pass)}.b.fail{background:var(--fail)}.b.warn{background:var(--warn)}.b.skip{background:var(--skip)}.b.inconclusive{background:var(--inconclusive)}
.check{border:1px solid var(--line);border-radius:6px;margin:10px 0;padding:10px 14px}
.check.fail{border-left:5px solid var(--fail)}.check.warn{border-left:5px solid var(--warn)}.check.pass{border-left:5px solid var(--pass)}.check.skip{border-left:5px solid var(--skip)}.check.inconclusive{border-left:5px solid var(--inconclusive)}
.check h3{font-size:15px;margin:0 0 4px}.meta{color:#57606a;font-size:12px}
.msg{margin:6px 0;padding:6px 8px;border-radius:4px;white-space:pre-wrap}
.msg.fail{background:#ffebe9}.msg.warn{background:#fff8c5}.msg.skip{background:#f6f8fa}.msg.inconclusive{background:#fbefff}
details{margin:6px 0}summary{cursor:pointer;color:#0969da}
pre{background:var(--bg);padding:8px;border-radius:4px;overflow:auto;font:12px ui-monospace,SFMono-Regular,Menlo,monospace;max-height:420px}
img.shot{max-width:100%;border:1px solid var(--line);border-radius:4px;margin-top:6px}
.filters label{margin-right:12px}
</style></head>
<body>
<header>
<h1>MCP authorization conformance</h1>
<div>Target <code>{{.Run.Target}}</code> · MCP spec {{.Run.SpecVersion}}{{if eq .Run.SpecVersionSource "default"}} (assumed by default; change with <code>--spec-version</code>){{end}} · {{.Generated}} · {{.Duration}}{{if .Run.LabelFilter}} · filter <code>{{.Run.LabelFilter}}</code>{{end}}</div>
{{if .Failed}}<p><span class="verdict fail">COULD NOT EVALUATE — the preflight step “{{.Failed.Name}}” failed; no check was graded</span></p>
<div class="msg fail">{{.Failed.Detail}}</div>{{if .Failed.Hint}}<div class="msg warn">hint: {{.Failed.Hint}}</div>{{end}}
{{else}}<p><span class="verdict {{if .Passed}}pass{{else}}fail{{end}}">{{if .Passed}}PASS — no MUST check failed{{else}}FAIL — {{.Counts.MustFail}} MUST check(s) failed{{end}}</span></p>
<div class="counts"><span><b>{{.Counts.Total}}</b> checks</span><span style="color:var(--pass)"><b>{{.Counts.Pass}}</b> passed</span><span style="color:var(--fail)"><b>{{.Counts.Fail}}</b> failed</span><span style="color:var(--warn)"><b>{{.Counts.Warn}}</b> warnings</span><span style="color:var(--inconclusive)"><b>{{.Counts.Inconclusive}}</b> inconclusive</span><span style="color:var(--skip)"><b>{{.Counts.Skip}}</b> skipped</span></div>
{{with .Run.Design}}<div class="meta">design: {{.Kind}} — {{.Evidence}}</div>{{end}}{{end}}
{{if .Run.Mode}}<div class="meta">mode: {{.Run.Mode}} — {{.Run.ModeDetail}}{{with .Run.Browser}} · browser {{.}}{{end}}</div>{{end}}
{{with .Run.Preflight}}<details><summary>Preflight ({{len .Steps}} steps)</summary><pre>{{range .Steps}}{{.Status}}  {{.Name}}: {{.Detail}}{{if .Hint}}
      hint: {{.Hint}}{{end}}
{{end}}</pre></details>{{end}}
</header>
<main>
<h2>Checks by section and level</h2>
<table class="matrix"><thead><tr><th>Section</th>{{range .Levels}}<th>{{.}}</th>{{end}}</tr></thead><tbody>
{{range .Rows}}<tr><th>{{.Section}}</th>{{range .Cells}}<td>{{range .Results}}<a class="b {{lower .Status}}" href="#{{anchor .ID}}" title="{{.Status}}: {{.Title}}">{{.ID}}</a>{{end}}</td>{{end}}</tr>
{{end}}</tbody></table>
<h2>Details</h2>
<div class="filters">Show: <label><input type="checkbox" checked data-s="fail"> failed</label><label><input type="checkbox" checked data-s="inconclusive"> inconclusive</label><label><input type="checkbox" checked data-s="warn"> warnings</label><label><input type="checkbox" checked data-s="skip"> skipped</label><label><input type="checkbox" checked data-s="pass"> passed</label></div>
{{range .Results}}
<section class="check {{lower .Status}}" id="{{anchor .ID}}" data-s="{{lower .Status}}">
<h3>{{.ID}} · {{.Title}}</h3>
<div class="meta">{{.Status}} · {{.Level}} ({{.LevelText}}) · {{.Section}} · {{.Area}} · {{ms .DurationMS}}</div>
<div class="meta">{{.Requirement}}</div>
{{range .Failures}}<div class="msg fail">{{.}}</div>{{end}}
{{range .Warnings}}<div class="msg warn">{{.}}</div>{{end}}
{{if .SkipReason}}<div class="msg skip">skipped: {{.SkipReason}}{{if .SkipFlag}} — set <code>{{.SkipFlag}}</code>{{end}}</div>{{end}}
{{with .Inconclusive}}<div class="msg inconclusive">inconclusive — step: {{.Step}}<br>the server answered: {{.Answer}}<br>why this is no verdict: {{.Why}}{{if .Owner}}<br>graded by <a href="#{{anchor .Owner}}">{{.Owner}}</a>{{end}}</div>{{end}}
{{if .Links}}<div class="meta">graded by: {{range .Links}}<a class="b {{lower .Status}}" href="#{{anchor .ID}}">{{.ID}}</a>{{end}}</div>{{end}}
{{with .Attempts}}<div class="meta">{{.String}}</div>{{end}}
{{with .Evidence}}
{{range .Screenshots}}<details open><summary>Screenshot: {{.Label}}</summary><div class="meta">{{.URL}}</div><img class="shot" alt="{{.Label}}" src="{{png .PNG}}"></details>{{end}}
{{if .Notes}}<details><summary>Notes ({{len .Notes}})</summary><pre>{{range .Notes}}{{.}}
{{end}}</pre></details>{{end}}
{{if .Exchanges}}<details><summary>HTTP exchanges ({{len .Exchanges}})</summary>
{{range .Exchanges}}<details><summary>{{if .Label}}{{.Label}}: {{end}}{{.Request.Method}} {{.Request.URL}} → {{if .Response}}{{.Response.Status}}{{else}}{{.Error}}{{end}}</summary>
<pre>{{.Request.Method}} {{.Request.URL}}
{{headers .Request.Header}}{{if .Request.Body}}
{{.Request.Body}}{{end}}</pre>
{{if .Response}}<pre>HTTP {{.Response.Status}}
{{headers .Response.Header}}{{if .Response.Body}}
{{.Response.Body}}{{end}}</pre>{{end}}
{{if .Tokens}}<pre>tokens (signatures elided):
{{json .Tokens}}</pre>{{end}}
</details>{{end}}
</details>{{end}}
{{if .Tokens}}<details><summary>Tokens (signatures elided)</summary><pre>{{json .Tokens}}</pre></details>{{end}}
{{if .Navigations}}<details><summary>Browser navigations ({{len .Navigations}})</summary><pre>{{range .Navigations}}[{{.Session}}] {{.Method}} {{.URL}}{{if .RedirectStatus}} (after a {{.RedirectStatus}}){{end}}
{{end}}</pre></details>{{end}}
{{end}}
</section>
{{end}}
</main>
<script>
document.querySelectorAll('.filters input').forEach(function (cb) {
  cb.addEventListener('change', function () {
    document.querySelectorAll('section.check[data-s="' + cb.dataset.s + '"]').forEach(function (s) { s.style.display = cb.checked ? '' : 'none'; });
  });
});
</script>
</body></html>
`))

// WriteHTML writes a self-contained page (no external resources; screenshots inlined).
func WriteHTML(w io.Writer, run *Run) error {
	p := htmlPage{Run: run, Counts: run.Counts(), Levels: htmlLevels, Results: run.Results, Passed: run.Passed(), Failed: run.Preflight.Failed(),
		Generated: run.Started.UTC().Format("2006-01-02 15:04 UTC"),
		Duration:  time.Duration(run.DurationMS * float64(time.Millisecond)).Round(10 * time.Millisecond).String()}
	rows := map[string]*htmlRow{}
	var order []string
	for _, r := range run.Results {
		row := rows[r.Section]
		if row == nil {
			row = &htmlRow{Section: r.Section, Cells: make([]htmlCell, len(htmlLevels))}
			rows[r.Section] = row
			order = append(order, r.Section)
		}
		for i, l := range htmlLevels {
			if l == r.Level {
				row.Cells[i].Results = append(row.Cells[i].Results, r)
			}
		}
	}
	for _, s := range order {
		p.Rows = append(p.Rows, *rows[s])
	}
	if err := page.Execute(w, p); err != nil {
		return fmt.Errorf("write HTML report: %w", err)
	}
	return nil
}
