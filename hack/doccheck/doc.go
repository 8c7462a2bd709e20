// Package doccheck holds the test that keeps the documentation's command lines true: every command
// line of our binaries and every make target a Markdown file shows is run with --help (flag
// parsing only) or looked up, and every flag mentioned on its own must exist on the command the
// text is about. See doccheck_test.go.
package doccheck
