package config

import (
	"os"
	"testing"
)

// The shipped example parses with the strict decoder (so it cannot drift from the Config type).
func TestExampleConfigParses(t *testing.T) {
	b, err := os.ReadFile("../oidc.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var c Config
	if err := Parse(b, &c); err != nil {
		t.Fatal(err)
	}
	c.Defaults()
	if c.Issuer == "" || len(c.SigningKeys) != 1 || len(c.SealingKeys) != 1 || c.Storage.Driver != "bolt" || c.MCP.Path != "/mcp" {
		t.Fatalf("%+v", c)
	}
}
