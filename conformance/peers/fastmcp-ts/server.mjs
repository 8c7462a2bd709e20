// A small MCP server on fastmcp (TypeScript) with its built-in OAuth proxy in front of an Auth0
// tenant (here: this repository's mock Auth0). It is the "software we did not write" that
// mcp-auth-conformance is run against; the wiring is fastmcp's documented one for "SAP, Auth0, Okta,
// etc." (README, "Generic OAuth Provider": `auth: new OAuthProvider({...})`), nothing more.
//
//   UPSTREAM_ISSUER=http://127.0.0.1:8081/ UPSTREAM_CLIENT_ID=… UPSTREAM_CLIENT_SECRET=… PORT=8080 node server.mjs
//
// The upstream application must allow the callback http://localhost:PORT/oauth/callback
// (`mockauth0 --callback http://localhost:PORT/oauth/callback`).
import { FastMCP, OAuthProvider, requireAuth } from 'fastmcp';

const upstream = (process.env.UPSTREAM_ISSUER || 'http://127.0.0.1:8081/').replace(/\/?$/, '/');
const port = Number(process.env.PORT || 8080);
const baseUrl = `http://localhost:${port}`;

const server = new FastMCP({
  name: 'fastmcp-ts peer',
  version: '1.0.0',
  auth: new OAuthProvider({
    authorizationEndpoint: `${upstream}authorize`,
    tokenEndpoint: `${upstream}oauth/token`,
    baseUrl,
    clientId: process.env.UPSTREAM_CLIENT_ID,
    clientSecret: process.env.UPSTREAM_CLIENT_SECRET,
    scopes: ['openid', 'profile', 'email'],
  }),
});

server.addTool({
  name: 'whoami',
  description: 'Returns the caller',
  canAccess: requireAuth,
  execute: async () => 'ok',
});

await server.start({ transportType: 'httpStream', httpStream: { host: '127.0.0.1', port, endpoint: '/mcp' } });
console.log(`peer MCP endpoint: ${baseUrl}/mcp`);
