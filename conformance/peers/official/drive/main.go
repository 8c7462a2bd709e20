// Command drive runs the official MCP conformance package's authorization-server mode
// (`@modelcontextprotocol/conformance authorization`) against an authorization server and performs
// its browser step with this suite's chromedp login driver: it registers a client whose redirect URI
// is the tool's callback listener, starts the tool, opens the authorization URL the tool prints,
// approves the consent page and logs in upstream.
//
//	go run ./conformance/peers/official/drive --issuer http://127.0.0.1:8080 --resource http://127.0.0.1:8080/mcp \
//	    -- node .../@modelcontextprotocol/conformance/dist/index.js
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/cnpg-mcp/cnpg-mcp/conformance/browser"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/login"
	"github.com/cnpg-mcp/cnpg-mcp/conformance/oauthclient"
)

func main() {
	issuer := flag.String("issuer", "", "authorization server issuer URL")
	resource := flag.String("resource", "", "MCP server URL (RFC 8707 resource)")
	port := flag.Int("port", 3000, "port of the tool's callback listener")
	out := flag.String("output-dir", "", "the tool's --output-dir")
	user := flag.String("username", "dev@example.com", "upstream user")
	pass := flag.String("password", "dev-password", "upstream password")
	chromium := flag.String("chromium", browser.DefaultExecPath, "Chromium binary")
	flag.Parse()
	if *issuer == "" || flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: drive --issuer URL [--resource URL] -- <conformance command...>")
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := run(ctx, *issuer, *resource, *port, *out, *user, *pass, *chromium, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "drive:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, issuer, resource string, port int, outDir, user, pass, chromium string, tool []string) error {
	c := oauthclient.New(nil)
	as, _, err := c.DiscoverAS(ctx, issuer)
	if err != nil {
		return err
	}
	redirect := "http://127.0.0.1:" + strconv.Itoa(port) + "/callback"
	reg, resp, err := c.Register(ctx, as.RegistrationEndpoint, oauthclient.PublicClientMetadata("official MCP conformance tool", redirect))
	if err != nil {
		return fmt.Errorf("register a client for the tool: %v (%s)", err, resp.Describe())
	}
	args := append(append([]string{}, tool[1:]...), "authorization", "--url", issuer, "--client-id", reg.ClientID, "--port", strconv.Itoa(port))
	if resource != "" {
		args = append(args, "--resource", resource)
	}
	if outDir != "" {
		args = append(args, "--output-dir", outDir)
	}
	cmd := exec.CommandContext(ctx, tool[0], args...)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start the conformance tool: %w", err)
	}
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(io.TeeReader(stdout, os.Stdout))
		sent := false
		for sc.Scan() {
			if line := strings.TrimSpace(sc.Text()); !sent && strings.HasPrefix(line, as.AuthorizationEndpoint+"?") {
				urls <- line
				sent = true
			}
		}
		close(urls)
	}()
	select {
	case u, ok := <-urls:
		if ok {
			if err := browse(ctx, u, redirect, user, pass, chromium); err != nil {
				fmt.Fprintln(os.Stderr, "drive: browser step:", err)
			}
		}
	case <-ctx.Done():
	}
	return cmd.Wait()
}

func browse(ctx context.Context, authURL, redirect, user, pass, chromium string) error {
	b, err := browser.Start(ctx, browser.Options{ExecPath: chromium})
	if err != nil {
		return err
	}
	defer b.Close()
	s, err := b.NewSession()
	if err != nil {
		return err
	}
	defer s.Close()
	if err := s.StartNavigation(ctx, authURL); err != nil {
		return err
	}
	d := login.New(login.Options{Credentials: login.Credentials{Username: user, Password: pass}})
	done := func() bool {
		for _, n := range s.Navigations() {
			if strings.HasPrefix(n.URL, redirect) {
				return true
			}
		}
		return false
	}
	_, err = d.Run(ctx, s, login.Plan{Consent: login.Approve, Done: done})
	return err
}
