// The MCP TypeScript SDK's own client (Client + StreamableHTTPClientTransport + an OAuthClientProvider
// as the SDK's examples write it), driven through the interop steps against one MCP server. The Go
// test (interop/matrix_test.go) reads one JSON object per line on stdout:
//
//   {"event":"authorize","url":"…"}   open this URL in the browser; the code comes back to our listener
//   {"event":"expire"}                 move the server's clock past the access token's lifetime, then
//                                      write one line on stdin
//   {"step":"…","ok":true,"detail":…}  a step's outcome ("ok":false with "error" ends the run)
//
// node ts-sdk-client.mjs --url http://127.0.0.1:PORT/mcp --version 2025-11-25 --cluster NAME
import http from 'node:http';
import readline from 'node:readline';
import { parseArgs } from 'node:util';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';

const { values: args } = parseArgs({
  options: { url: { type: 'string' }, version: { type: 'string' }, cluster: { type: 'string' } },
});
const emit = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const lines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();

// The redirect listener a desktop client runs on loopback for the authorization response.
let onCode;
const callback = http.createServer((req, res) => {
  const u = new URL(req.url, 'http://127.0.0.1');
  res.writeHead(200, { 'content-type': 'text/plain' }).end('Signed in. You can close this window.');
  if (u.pathname === '/callback' && onCode) onCode(u.searchParams);
});
await new Promise((r) => callback.listen(0, '127.0.0.1', r));
const redirectUrl = `http://127.0.0.1:${callback.address().port}/callback`;

// An in-memory OAuthClientProvider, as in the SDK's examples/client/simpleOAuthClientProvider.
class Provider {
  constructor() { this.saved = 0; }
  get redirectUrl() { return redirectUrl; }
  get clientMetadata() {
    return { client_name: 'interop: MCP TypeScript SDK client', redirect_uris: [redirectUrl],
      grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], token_endpoint_auth_method: 'none' };
  }
  clientInformation() { return this.info; }
  saveClientInformation(i) { this.info = i; }
  tokens() { return this.tok; }
  saveTokens(t) { this.tok = t; this.saved++; }
  redirectToAuthorization(u) { emit({ event: 'authorize', url: u.toString() }); }
  saveCodeVerifier(v) { this.verifier = v; }
  codeVerifier() { return this.verifier; }
}
const provider = new Provider();

// The SDK always offers its latest version (2025-11-25) in initialize and accepts an older one in the
// answer; to speak 2025-06-18 with a server that knows both, the initialize request offers that one.
const fetchFor = (version) => async (input, init) => {
  if (version !== '2025-11-25' && init?.body && typeof init.body === 'string' && init.body.includes('"initialize"')) {
    const msg = JSON.parse(init.body);
    if (msg.method === 'initialize') {
      msg.params.protocolVersion = version;
      init = { ...init, body: JSON.stringify(msg) };
    }
  }
  return fetch(input, init);
};

function step(name, fn) {
  return fn().then((detail) => { emit({ step: name, ok: true, detail }); return detail; },
    (err) => { emit({ step: name, ok: false, error: String(err?.stack || err) }); process.exit(1); });
}

async function connect() {
  const transport = new StreamableHTTPClientTransport(new URL(args.url), { authProvider: provider, fetch: fetchFor(args.version) });
  const client = new Client({ name: 'interop-ts-sdk', version: '1.0.0' });
  await client.connect(transport);
  return { client, transport };
}

async function toolText(res) {
  if (res.isError) throw new Error('tool error: ' + JSON.stringify(res.content));
  return res.structuredContent ?? res.content;
}

let session;
await step('register', async () => {
  try {
    session = await connect();
    throw new Error('connected without authorization');
  } catch (e) {
    if (!(e instanceof UnauthorizedError)) throw e;
  }
  if (!provider.clientInformation()?.client_id) throw new Error('no client registered');
  return provider.clientInformation().client_id;
});
// The browser step: the Go side drives it from the "authorize" event; the code arrives here.
const params = await new Promise((resolve) => { onCode = resolve; });
await step('token', async () => {
  if (!params.get('code')) throw new Error('authorization response without a code: ' + params.toString());
  const t = new StreamableHTTPClientTransport(new URL(args.url), { authProvider: provider, fetch: fetchFor(args.version) });
  await t.finishAuth(params.get('code'));
  return { scope: provider.tokens()?.scope };
});
await step('initialize', async () => {
  session = await connect();
  return { protocolVersion: session.transport.protocolVersion, server: session.client.getServerVersion()?.name };
});
await step('list-tools', async () => {
  const r = await session.client.listTools();
  return { count: r.tools.length };
});
await step('read-tool', async () => toolText(await session.client.callTool({ name: 'list_postgres_clusters', arguments: { namespace: 'default' } })));
await step('write-tool', async () => toolText(await session.client.callTool({ name: 'create_postgres_cluster',
  arguments: { name: args.cluster, namespace: 'default', instances: 1, wait: false } })));
emit({ event: 'expire' });
await lines.next();
const before = provider.saved;
await step('refresh', async () => {
  // The access token is now expired at the server: the next request gets 401 invalid_token and the
  // SDK's auth() uses the refresh token before retrying.
  const r = await toolText(await session.client.callTool({ name: 'get_cluster_status', arguments: { name: args.cluster, namespace: 'default' } }));
  if (provider.saved === before) throw new Error('the call succeeded without new tokens: nothing was refreshed');
  return r;
});
await step('call-again', async () => toolText(await session.client.callTool({ name: 'scale_postgres_cluster',
  arguments: { name: args.cluster, namespace: 'default', instances: 2, dry_run: true } })));
await session.client.close();
callback.close();
process.exit(0);
