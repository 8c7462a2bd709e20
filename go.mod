module github.com/cnpg-mcp/cnpg-mcp

go 1.26.0
