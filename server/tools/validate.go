package tools

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"

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
