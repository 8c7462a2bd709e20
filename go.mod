module github.com/cnpg-mcp/cnpg-mcp

go 1.26.4

require github.com/golang-jwt/jwt/v5 v5.3.1
