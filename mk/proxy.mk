# OAuth proxy / reference server (issue 3).
BINARIES += cnpg-mcp-server
PKG_cnpg-mcp-server := ./server
BINARIES += devstack
PKG_devstack := ./hack/devstack
