// A small MCP server protected by the MCP TypeScript SDK's ProxyOAuthServerProvider, pointed at an
// Auth0 tenant (here: this repository's mock Auth0). It is the "software we did not write" that
// mcp-auth-conformance is run against; the code is the SDK's documented wiring, nothing more, with
// two choices a careful deployer makes: a token the upstream does not accept is the SDK's
// InvalidTokenError (401 with a Bearer challenge, not a 500), and the SDK's per-IP rate limits are
// off (the suite is one client making hundreds of requests; a limit would grade the limiter, not the
// proxy).
//
//   UPSTREAM_ISSUER=http://127.0.0.1:8081/ PORT=8080 node server.mjs
import express from 'express';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { ProxyOAuthServerProvider } from '@modelcontextprotocol/sdk/server/auth/providers/proxyProvider.js';
import { mcpAuthRouter, getOAuthProtectedResourceMetadataUrl } from '@modelcontextprotocol/sdk/server/auth/router.js';
import { requireBearerAuth } from '@modelcontextprotocol/sdk/server/auth/middleware/bearerAuth.js';
import { InvalidTokenError, ServerError } from '@modelcontextprotocol/sdk/server/auth/errors.js';

const upstream = (process.env.UPSTREAM_ISSUER || 'http://127.0.0.1:8081/').replace(/\/?$/, '/');
const port = Number(process.env.PORT || 8080);
const base = new URL(`http://localhost:${port}`);
const mcpURL = new URL('/mcp', base);

// Registrations go to Auth0's DCR endpoint; the proxy remembers what Auth0 answered.
const clients = new Map();
class Auth0Proxy extends ProxyOAuthServerProvider {
  get clientsStore() {
    const store = super.clientsStore;
    return {
      getClient: async (id) => clients.get(id),
      registerClient: async (c) => {
        const r = await store.registerClient(c);
        clients.set(r.client_id, r);
        return r;
      },
    };
  }
}

const provider = new Auth0Proxy({
  endpoints: {
    authorizationUrl: `${upstream}authorize`,
    tokenUrl: `${upstream}oauth/token`,
    revocationUrl: `${upstream}oauth/revoke`,
    registrationUrl: `${upstream}oidc/register`,
  },
  // Auth0's /userinfo accepts its access tokens (JWS and JWE alike) when `openid` was granted.
  // A token it refuses is invalid (401); an upstream that fails otherwise is a server error.
  verifyAccessToken: async (token) => {
    const r = await fetch(`${upstream}userinfo`, { headers: { Authorization: `Bearer ${token}` } });
    if (r.status === 401 || r.status === 403) throw new InvalidTokenError(`the upstream refused the token (userinfo ${r.status})`);
    if (!r.ok) throw new ServerError(`userinfo ${r.status}`);
    const info = await r.json();
    let exp = Math.floor(Date.now() / 1000) + 3600;
    const parts = token.split('.');
    if (parts.length === 3) {
      try { exp = JSON.parse(Buffer.from(parts[1], 'base64url').toString()).exp || exp; } catch { /* opaque */ }
    }
    return { token, clientId: info.sub, scopes: [], expiresAt: exp };
  },
  getClient: async (id) => clients.get(id),
});

const app = express();
app.use(mcpAuthRouter({
  provider,
  issuerUrl: base,
  resourceServerUrl: mcpURL,
  scopesSupported: ['openid', 'profile', 'email'],
  resourceName: 'ts-sdk proxy peer',
  authorizationOptions: { rateLimit: false },
  clientRegistrationOptions: { rateLimit: false },
  tokenOptions: { rateLimit: false },
  revocationOptions: { rateLimit: false },
}));
app.use(express.json());

const auth = requireBearerAuth({ verifier: provider, resourceMetadataUrl: getOAuthProtectedResourceMetadataUrl(mcpURL) });
app.post('/mcp', auth, async (req, res) => {
  const server = new McpServer({ name: 'peer', version: '1.0.0' });
  server.tool('whoami', 'Returns the caller', async (extra) => ({ content: [{ type: 'text', text: 'ok' }] }));
  const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
  res.on('close', () => { transport.close(); server.close(); });
  await server.connect(transport);
  await transport.handleRequest(req, res, req.body);
});

app.listen(port, '127.0.0.1', () => console.log(`peer MCP endpoint: ${mcpURL.href}`));
