'use strict';
// The sandbox tenant: one HTTPS server on 127.0.0.1 (plain HTTP with --http)
// carrying the identity service, the vendor APIs and the endpoints the
// core's tests need.
//
// The identity service is the real oidc-provider, under /identity; the
// vendor APIs are Insights (insights.js), DealCloud and ExaVault
// (activity.js); the core's endpoints are under /test/ (testroutes.js).
// It makes a CA for the run, prints one JSON line when it is ready, and
// exits on SIGTERM, when its parent process is gone, or after --max-seconds
// (0: no limit).
//
// node server.js --dir DIR [--http] [--port N] [--token-ttl S]
//                [--parent-pid PID] [--max-seconds S] [--client-cert PEM]
//                [--job-seconds S] [--opaque-tokens] [--hostile] [--markup]
//
// --hostile: text fields start with formula-like texts (=cmd|..., +1, -2+3,
// @SUM(A1), TAB, CR): DealCloud and ExaVault rows, Insights group names
// and object titles.
// --markup: Insights group names and object titles end with HTML markup
// (<script>..., "><img ...>, </table>...).

const { execFileSync } = require('child_process');
const fs = require('fs');
const http = require('http');
const https = require('https');
const path = require('path');

const { createActivity } = require('./activity');
const { createIdentity } = require('./identity');
const { createInsights } = require('./insights');
const { createTestRoutes, sendJson } = require('./testroutes');

function parseArgs(argv) {
  const opts = {
    dir: null, http: false, opaqueTokens: false, hostile: false, markup: false, port: 0, tokenTtl: 600, parentPid: null, maxSeconds: 1800, jobSeconds: 1.0,
    clientCert: path.join(__dirname, '..', 'fixtures', 'app-cert.pem'),
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--dir') opts.dir = next();
    else if (a === '--http') opts.http = true;
    else if (a === '--port') opts.port = Number(next());
    else if (a === '--token-ttl') opts.tokenTtl = Number(next());
    else if (a === '--parent-pid') opts.parentPid = Number(next());
    else if (a === '--max-seconds') opts.maxSeconds = Number(next());
    else if (a === '--client-cert') opts.clientCert = next();
    else if (a === '--job-seconds') opts.jobSeconds = Number(next());
    else if (a === '--opaque-tokens') opts.opaqueTokens = true;
    else if (a === '--hostile') opts.hostile = true;
    else if (a === '--markup') opts.markup = true;
    else throw new Error(`unknown option ${a}`);
  }
  if (!opts.dir) throw new Error('--dir is required');
  return opts;
}

// A CA for this run and a server certificate for 127.0.0.1 and localhost.
function makeCertificates(dir) {
  const run = (...args) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  run('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca-key.pem', '-out', 'ca.pem',
    '-days', '2', '-subj', '/CN=auditrun sandbox CA');
  run('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server-key.pem', '-out', 'server.csr',
    '-subj', '/CN=127.0.0.1');
  fs.writeFileSync(path.join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  run('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca-key.pem', '-CAcreateserial',
    '-out', 'server.pem', '-days', '2', '-extfile', 'san.ext');
  return {
    ca: path.join(dir, 'ca.pem'),
    key: fs.readFileSync(path.join(dir, 'server-key.pem')),
    cert: fs.readFileSync(path.join(dir, 'server.pem')),
  };
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const stats = { tcp_connections: 0, tls_handshakes: 0, tls_sessions_resumed: 0, requests: 0 };
  const certs = opts.http ? null : makeCertificates(opts.dir);

  let identity = null;
  let insights = null;
  const activity = createActivity({ hostile: opts.hostile });
  const testRoutes = createTestRoutes(stats);

  function findRoute(method, pathname) {
    for (const [routeMethod, re, handler, options = {}] of testRoutes) {
      const match = re.exec(pathname);
      if (match && (routeMethod === '*' || routeMethod === method)) return { handler, match, stream: !!options.stream };
    }
    return null;
  }

  async function dispatch(req, res) {
    stats.requests++;
    // The provider reads its own request bodies.
    if (identity.handle(req, res)) return;
    const url = new URL(req.url, 'http://sandbox');
    const route = findRoute(req.method, url.pathname);
    if (route && route.stream) return route.handler(req, res, null, url, route.match);
    const body = await readBody(req);
    if (await insights.handle(req, res, body)) return;
    if (await activity.handle(req, res, body)) return;
    const fail = /^\/test\/identity-fail\/(\d+)$/.exec(url.pathname);
    if (req.method === 'POST' && fail) {
      identity.faults.tokenFailures = Number(fail[1]);
      return sendJson(res, 200, identity.faults);
    }
    if (req.method === 'GET' && url.pathname === '/test/protected') {
      const claims = await identity.verifyAccessToken(req);
      if (!claims) {
        return sendJson(res, 401, { error: 'invalid_token' }, { 'WWW-Authenticate': 'Bearer error="invalid_token"' });
      }
      return sendJson(res, 200, { sub: claims.sub, client_id: claims.client_id, scope: claims.scope });
    }
    if (route) return route.handler(req, res, body, url, route.match);
    sendJson(res, 404, { error: 'not_found' });
  }

  const handler = (req, res) => {
    dispatch(req, res).catch((err) => {
      console.error('sandbox error', err);
      if (!res.headersSent) sendJson(res, 500, { error: 'sandbox_error', message: String(err.message) });
      else res.destroy();
    });
  };
  const server = opts.http ? http.createServer(handler) : https.createServer({ key: certs.key, cert: certs.cert }, handler);
  server.keepAliveTimeout = 60000;
  server.headersTimeout = 65000;
  server.requestTimeout = 0;
  server.on('connection', () => stats.tcp_connections++);
  server.on('secureConnection', (socket) => {
    stats.tls_handshakes++;
    if (socket.isSessionReused()) stats.tls_sessions_resumed++;
  });

  await new Promise((resolve) => server.listen(opts.port, '127.0.0.1', resolve));
  const port = server.address().port;
  const url = `${opts.http ? 'http' : 'https'}://127.0.0.1:${port}`;
  identity = await createIdentity({ url, tokenTtl: opts.tokenTtl, clientCert: opts.clientCert, opaqueTokens: opts.opaqueTokens });
  insights = createInsights({ verifyAccessToken: identity.verifyAccessToken, jobSeconds: opts.jobSeconds, hostile: opts.hostile, markup: opts.markup });

  const stop = () => {
    server.closeAllConnections?.();
    server.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 1000).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  if (opts.maxSeconds > 0) setTimeout(stop, opts.maxSeconds * 1000).unref();
  if (opts.parentPid) {
    setInterval(() => {
      try {
        process.kill(opts.parentPid, 0);
      } catch {
        stop();
      }
    }, 1000).unref();
  }

  process.stdout.write(JSON.stringify({
    pid: process.pid, port, url, ca_file: certs ? certs.ca : null, issuer: identity.issuer,
    token_endpoint: identity.tokenEndpoint, clients: identity.clients, scope: identity.scope,
  }) + '\n');
}

main().catch((err) => {
  console.error(`sandbox: ${err.stack || err}`);
  process.exit(1);
});
