package tools

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/big"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
	"k8s.io/apimachinery/pkg/api/resource"
)

const rfc1123Pattern = `^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`

var rfc1123 = regexp.MustCompile(rfc1123Pattern)

// checkName validates an RFC 1123 DNS label (Kubernetes object names used here, namespaces,
// instance names) and says how to fix a bad one.
func checkName(field, v string) error {
	if v == "" {
		return userErrorf("%s is required: give a lowercase name such as \"pg-main\"", field)
	}
	if len(v) <= 63 && rfc1123.MatchString(v) {
		return nil
	}
	var why []string
	if len(v) > 63 {
		why = append(why, fmt.Sprintf("it has %d characters (at most 63)", len(v)))
	}
	if strings.ToLower(v) != v {
		why = append(why, "it has uppercase letters")
	}
	if strings.IndexFunc(v, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r >= 'A' && r <= 'Z')
	}) >= 0 {
		why = append(why, "it has characters other than letters, digits and '-'")
	}
	if strings.HasPrefix(v, "-") || strings.HasSuffix(v, "-") {
		why = append(why, "it starts or ends with '-'")
	}
	return userErrorf("%s %q is not a valid RFC 1123 name (%s): use lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters, e.g. %q",
		field, v, strings.Join(why, "; "), suggestName(v))
}

func suggestName(v string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(v) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else if b.Len() > 0 && !strings.HasSuffix(b.String(), "-") {
			b.WriteByte('-')
		}
	}
	s := strings.Trim(b.String(), "-")
	if len(s) > 63 {
		s = strings.Trim(s[:63], "-")
	}
	if s == "" {
		s = "pg-main"
	}
	return s
}

// quantityExponent is a quantity's decimal exponent ("1e3", "5E+2").
var quantityExponent = regexp.MustCompile(`[eE][+-]?([0-9]+)$`)

// checkQuantity validates a positive Kubernetes quantity such as 10Gi.
func checkQuantity(field, v string) (resource.Quantity, error) {
	// ParseQuantity accepts a decimal exponent of any size and never returns on one like
	// "1E0000003000000000000000" (FuzzCheckQuantity): refuse long inputs and exponents beyond two
	// digits before parsing.
	if m := quantityExponent.FindStringSubmatch(v); len(v) > 64 || (m != nil && len(strings.TrimLeft(m[1], "0")) > 2) {
		return resource.Quantity{}, userErrorf("%s %q is not a usable size: use a number with a binary suffix such as \"10Gi\", \"500Mi\" or \"1Ti\"", field, v)
	}
	q, err := resource.ParseQuantity(v)
	if err != nil || q.Sign() <= 0 {
		return resource.Quantity{}, userErrorf("%s %q is not a positive Kubernetes quantity: use a number with a binary suffix such as \"10Gi\", \"500Mi\" or \"1Ti\"", field, v)
	}
	// Beyond what an int64 of bytes holds, Kubernetes loses the value: "1000000P" prints as "1",
	// "1000000Pi" already parses as 2^63-1 (FuzzCheckQuantity). Refuse sizes from 2^63-1 up, and
	// anything that cannot be written back exactly.
	if back, err := resource.ParseQuantity(q.String()); err != nil || back.Cmp(q) != 0 || q.CmpInt64(math.MaxInt64) >= 0 {
		return resource.Quantity{}, userErrorf("%s %q is larger than Kubernetes can represent exactly: use a size below 8Ei, such as \"100Ti\"", field, v)
	}
	return q, nil
}

// checkRange validates an integer argument.
func checkRange(field string, v, lo, hi int) error {
	if v < lo || v > hi {
		return userErrorf("%s must be between %d and %d (got %d)", field, lo, hi, v)
	}
	return nil
}

// cronFields are the fields of CloudNativePG's 6-field schedule (robfig/cron with seconds).
var cronFields = []struct {
	name   string
	lo, hi int
	names  []string
}{
	{"second", 0, 59, nil},
	{"minute", 0, 59, nil},
	{"hour", 0, 23, nil},
	{"day of month", 1, 31, nil},
	{"month", 1, 12, []string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}},
	{"day of week", 0, 6, []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}},
}

var cronDescriptors = []string{"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}

// checkCron validates a ScheduledBackup schedule: six fields (seconds first) or a descriptor.
func checkCron(v string) error {
	v = strings.TrimSpace(v)
	for _, d := range cronDescriptors {
		if v == d {
			return nil
		}
	}
	if strings.HasPrefix(v, "@every ") {
		return nil
	}
	fields := strings.Fields(v)
	hint := "use six fields \"second minute hour day-of-month month day-of-week\", e.g. \"0 0 2 * * *\" for 02:00 every day (CloudNativePG schedules have a leading seconds field, unlike Kubernetes CronJobs)"
	if len(fields) != 6 {
		return userErrorf("schedule %q has %d fields: %s", v, len(fields), hint)
	}
	for i, f := range fields {
		fd := cronFields[i]
		if err := checkCronField(f, fd.lo, fd.hi, fd.names); err != nil {
			return userErrorf("schedule %q: %s field %q %v; %s", v, fd.name, f, err, hint)
		}
	}
	return nil
}

func checkCronField(f string, lo, hi int, names []string) error {
	for _, part := range strings.Split(f, ",") {
		rng, step, hasStep := strings.Cut(part, "/")
		if hasStep {
			n, err := strconv.Atoi(step)
			if err != nil || n <= 0 {
				return fmt.Errorf("has an invalid step %q", step)
			}
		}
		if rng == "*" || rng == "?" {
			continue
		}
		a, b, isRange := strings.Cut(rng, "-")
		va, err := cronValue(a, lo, hi, names)
		if err != nil {
			return err
		}
		if isRange {
			vb, err := cronValue(b, lo, hi, names)
			if err != nil {
				return err
			}
			if vb < va {
				return fmt.Errorf("has a backwards range %q", rng)
			}
		}
	}
	return nil
}

func cronValue(s string, lo, hi int, names []string) (int, error) {
	for i, n := range names {
		if strings.EqualFold(s, n) {
			return i + lo, nil
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("is out of range (allowed %d-%d)", lo, hi)
	}
	return n, nil
}

// --- tool arguments against the input schema -------------------------------------------------

// argumentSchema checks a call's arguments against the tool's input schema (the schema tools/list
// publishes, additionalProperties false) and says in plain words what is wrong: missing required
// arguments by name, unknown ones with the names the tool takes, wrong types, values outside
// enums and ranges. It replaces mcp-go's WithInputSchemaValidation, whose message is a Go struct
// dump ("<root>: &{Missing:[cluster_name]}"), with the same validator (santhosh-tekuri/jsonschema).
type argumentSchema struct {
	tool   string
	input  mcp.ToolInputSchema
	once   sync.Once
	schema *jsonschema.Schema
	err    error
}

func newArgumentSchema(def mcp.Tool) *argumentSchema {
	return &argumentSchema{tool: def.Name, input: def.InputSchema}
}

// compiled compiles the schema on first use (tools/list and the docs never need it).
func (a *argumentSchema) compiled() (*jsonschema.Schema, error) {
	a.once.Do(func() {
		b, err := json.Marshal(a.input)
		if err != nil {
			a.err = err
			return
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			a.err = err
			return
		}
		url := "mem:///cnpg-mcp/tools/" + a.tool + ".json"
		c := jsonschema.NewCompiler()
		if a.err = c.AddResource(url, doc); a.err == nil {
			a.schema, a.err = c.Compile(url)
		}
	})
	return a.schema, a.err
}

// check returns "" when raw (the arguments as JSON; empty for none) satisfies the schema, else the
// message for the caller.
func (a *argumentSchema) check(raw []byte) string {
	s, err := a.compiled()
	if err != nil {
		return fmt.Sprintf("%s: internal error: its input schema does not compile (%v); report this to the server's operators", a.tool, err)
	}
	var v any = map[string]any{}
	if len(bytes.TrimSpace(raw)) > 0 && !bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		if v, err = jsonschema.UnmarshalJSON(bytes.NewReader(raw)); err != nil {
			return fmt.Sprintf("%s: the arguments are not valid JSON (%v)", a.tool, err)
		}
	}
	err = s.Validate(v)
	if err == nil {
		return ""
	}
	var verr *jsonschema.ValidationError
	if !errors.As(err, &verr) {
		return fmt.Sprintf("%s: the arguments could not be checked (%v)", a.tool, err)
	}
	return a.tool + ": " + a.explain(verr) + ". Nothing was done; call it again with corrected arguments."
}

// explain turns the validator's error tree into one sentence per problem: missing and unknown
// arguments first (each listed once), then each argument's problem in the order reported.
func (a *argumentSchema) explain(verr *jsonschema.ValidationError) string {
	var missing, unknown, other []string
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) > 0 {
			for _, c := range e.Causes {
				walk(c)
			}
			return
		}
		at := argPath(e.InstanceLocation)
		switch k := e.ErrorKind.(type) {
		case *kind.Required:
			if at == "" {
				missing = append(missing, k.Missing...)
			} else {
				other = append(other, fmt.Sprintf("%s is missing %s", at, plural("field", k.Missing)))
			}
		case *kind.AdditionalProperties:
			if at == "" {
				unknown = append(unknown, k.Properties...)
			} else {
				other = append(other, fmt.Sprintf("%s has unknown %s", at, plural("field", k.Properties)))
			}
		default:
			other = append(other, a.describe(at, e.InstanceLocation, e.ErrorKind))
		}
	}
	walk(verr)
	var parts []string
	if len(missing) > 0 {
		parts = append(parts, "missing required "+plural("argument", dedupe(missing)))
	}
	if len(unknown) > 0 {
		parts = append(parts, fmt.Sprintf("unknown %s (this tool takes: %s)", plural("argument", dedupe(unknown)), strings.Join(slices.Sorted(maps.Keys(a.input.Properties)), ", ")))
	}
	parts = append(parts, dedupe(other)...)
	return strings.Join(parts, "; ")
}

// describe words one constraint violation of the argument at path at (the root when empty).
func (a *argumentSchema) describe(at string, loc []string, k jsonschema.ErrorKind) string {
	subject := at
	if subject == "" {
		subject = "the arguments"
	}
	switch k := k.(type) {
	case *kind.Type:
		var want []string
		for _, w := range k.Want {
			want = append(want, typeNoun(w))
		}
		if at == "" {
			return fmt.Sprintf("the arguments must be a JSON object with named arguments, not %s", typeNoun(k.Got))
		}
		return fmt.Sprintf("%s must be %s, not %s", subject, strings.Join(want, " or "), typeNoun(k.Got))
	case *kind.Enum:
		var want []string
		for _, w := range k.Want {
			want = append(want, display(w))
		}
		if len(want) == 1 {
			return fmt.Sprintf("%s must be %s (got %s)", subject, want[0], display(k.Got))
		}
		return fmt.Sprintf("%s must be one of %s (got %s)", subject, strings.Join(want, ", "), display(k.Got))
	case *kind.Const:
		return fmt.Sprintf("%s must be %s (got %s)", subject, display(k.Want), display(k.Got))
	case *kind.Minimum, *kind.Maximum, *kind.ExclusiveMinimum, *kind.ExclusiveMaximum:
		return a.rangeMessage(subject, loc, k)
	case *kind.MinLength:
		return fmt.Sprintf("%s must have at least %d characters (got %d)", subject, k.Want, k.Got)
	case *kind.MaxLength:
		return fmt.Sprintf("%s must have at most %d characters (got %d)", subject, k.Want, k.Got)
	case *kind.Pattern:
		return fmt.Sprintf("%s %q does not match the pattern %s", subject, k.Got, k.Want)
	case *kind.MinItems:
		return fmt.Sprintf("%s must have at least %d items (got %d)", subject, k.Want, k.Got)
	case *kind.MaxItems:
		return fmt.Sprintf("%s must have at most %d items (got %d)", subject, k.Want, k.Got)
	case *kind.UniqueItems:
		return fmt.Sprintf("%s must not repeat items (items %d and %d are equal)", subject, k.Duplicates[0], k.Duplicates[1])
	case *kind.Format:
		return fmt.Sprintf("%s must be a valid %s (got %s)", subject, k.Want, display(k.Got))
	}
	return subject + ": " + k.LocalizedString(englishPrinter)
}

// rangeMessage states the whole allowed range when the schema has both bounds ("instances must
// be between 1 and 10 (got 0)"), else the violated one.
func (a *argumentSchema) rangeMessage(subject string, loc []string, k jsonschema.ErrorKind) string {
	var got string
	var lo, hi any
	if len(loc) == 1 {
		if p, ok := a.input.Properties[loc[0]].(map[string]any); ok {
			lo, hi = p["minimum"], p["maximum"]
		}
	}
	switch k := k.(type) {
	case *kind.Minimum:
		got, lo = ratString(k.Got), firstNonNil(lo, ratString(k.Want))
	case *kind.Maximum:
		got, hi = ratString(k.Got), firstNonNil(hi, ratString(k.Want))
	case *kind.ExclusiveMinimum:
		return fmt.Sprintf("%s must be greater than %s (got %s)", subject, ratString(k.Want), ratString(k.Got))
	case *kind.ExclusiveMaximum:
		return fmt.Sprintf("%s must be less than %s (got %s)", subject, ratString(k.Want), ratString(k.Got))
	}
	switch {
	case lo != nil && hi != nil:
		return fmt.Sprintf("%s must be between %v and %v (got %s)", subject, lo, hi, got)
	case lo != nil:
		return fmt.Sprintf("%s must be at least %v (got %s)", subject, lo, got)
	default:
		return fmt.Sprintf("%s must be at most %v (got %s)", subject, hi, got)
	}
}

var englishPrinter = message.NewPrinter(language.English)

// argPath renders an instance location as the caller wrote it: instances, parameters.work_mem,
// in_roles[2].
func argPath(loc []string) string {
	var b strings.Builder
	for _, seg := range loc {
		if _, err := strconv.Atoi(seg); err == nil && b.Len() > 0 {
			b.WriteString("[" + seg + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(seg)
	}
	return b.String()
}

func typeNoun(t string) string {
	switch t {
	case "integer":
		return "a whole number"
	case "number":
		return "a number"
	case "string":
		return "a string"
	case "boolean":
		return "true or false"
	case "array":
		return "a list"
	case "object":
		return "an object"
	case "null":
		return "null"
	}
	return t
}

func display(v any) string {
	switch v := v.(type) {
	case string:
		return strconv.Quote(v)
	case json.Number:
		return v.String()
	case nil:
		return "null"
	case map[string]any:
		return "an object"
	case []any:
		return "a list"
	}
	return fmt.Sprint(v)
}

func ratString(r *big.Rat) string {
	if r == nil {
		return "?"
	}
	if r.IsInt() {
		return r.Num().String()
	}
	return r.FloatString(3)
}

func firstNonNil(a, b any) any {
	if a != nil {
		return a
	}
	return b
}

func plural(noun string, names []string) string {
	if len(names) == 1 {
		return noun + ": " + names[0]
	}
	return noun + "s: " + strings.Join(names, ", ")
}

func dedupe(s []string) []string {
	var out []string
	for _, v := range s {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// decodeMessage explains a failure to bind schema-valid arguments to the tool's Go type (for
// example 3.0 for a whole number), without Go type names.
func decodeMessage(tool string, err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := te.Field
		if field == "" {
			field = "the arguments"
		}
		want := "a value of another type"
		switch te.Type.Kind() {
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			want = "a whole number"
			if strings.HasPrefix(te.Value, "number ") {
				want = "a whole number written without a decimal point"
			}
		case reflect.Float32, reflect.Float64:
			want = "a number"
		case reflect.String:
			want = "a string"
		case reflect.Bool:
			want = "true or false"
		case reflect.Slice, reflect.Array:
			want = "a list"
		case reflect.Map, reflect.Struct:
			want = "an object"
		}
		return fmt.Sprintf("%s: %s must be %s (got %s). Nothing was done; call it again with corrected arguments.", tool, field, want, te.Value)
	}
	if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return fmt.Sprintf("%s: unknown argument %s. Nothing was done; see tools/list for the arguments it takes.", tool, f)
	}
	return fmt.Sprintf("%s: the arguments could not be read (%v). Nothing was done; see tools/list for the arguments it takes.", tool, err)
}
