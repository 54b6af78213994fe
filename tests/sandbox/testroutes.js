'use strict';
// Endpoints the HTTP core's own tests need, under /test/: echo, chosen
// statuses, faults, and connection statistics.
//
// Statuses come with Retry-After; there are flaky endpoints, delays, large
// and gzipped bodies, a connection dropped mid-body, redirects, repeated
// headers and uploads.

const crypto = require('crypto');
const zlib = require('zlib');

const { createZip } = require('./zip');

const CHUNK = 64 * 1024;

// Byte i of every generated body is i % 251, so any slice can be checked.
function patternChunk(offset, length) {
  const b = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) b[i] = (offset + i) % 251;
  return b;
}
// 251 * 261 bytes: a whole number of periods, reusable at any offset that is
// a multiple of 251.
const PERIOD_BLOCK = patternChunk(0, 251 * 261);

function sendJson(res, status, value, headers = {}) {
  const body = Buffer.from(JSON.stringify(value));
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': body.length, ...headers });
  res.end(body);
}

// Writes n pattern bytes, honouring backpressure.
function streamPattern(res, n, done) {
  let sent = 0;
  function pump() {
    while (sent < n) {
      const start = sent % 251;
      const len = Math.min(n - sent, PERIOD_BLOCK.length - start);
      const chunk = PERIOD_BLOCK.subarray(start, start + len);
      sent += len;
      if (!res.write(chunk)) {
        res.once('drain', pump);
        return;
      }
    }
    done();
  }
  pump();
}

// Routes are [method ('*' for any), path regex, handler(req, res, body, url,
// match), options]; options.stream means the handler reads req itself.
function createTestRoutes(stats) {
  const flaky = new Map();

  const routes = [
    ['*', /^\/test\/echo$/, (req, res, body, url) => {
      sendJson(res, Number(url.searchParams.get('status') || 200), {
        method: req.method, path: url.pathname, url: req.url, headers: req.headers, body: body.toString('latin1'),
      });
    }],
    ['GET', /^\/test\/status\/(\d{3})$/, (req, res, body, url, m) => {
      const headers = {};
      if (url.searchParams.has('retry_after')) headers['Retry-After'] = url.searchParams.get('retry_after');
      if (url.searchParams.has('retry_after_ms')) headers['retry-after-ms'] = url.searchParams.get('retry_after_ms');
      sendJson(res, Number(m[1]), { status: Number(m[1]) }, headers);
    }],
    ['*', /^\/test\/flaky\/([\w-]+)$/, (req, res, body, url, m) => {
      const attempts = (flaky.get(m[1]) || 0) + 1;
      flaky.set(m[1], attempts);
      if (attempts <= Number(url.searchParams.get('fail') || 0)) {
        const headers = {};
        if (url.searchParams.has('retry_after')) headers['Retry-After'] = url.searchParams.get('retry_after');
        if (url.searchParams.has('retry_after_ms')) headers['retry-after-ms'] = url.searchParams.get('retry_after_ms');
        const status = Number(url.searchParams.get('status') || 503);
        sendJson(res, status, { status, attempts }, headers);
      } else {
        sendJson(res, 200, { ok: true, attempts });
      }
    }],
    ['GET', /^\/test\/delay\/(\d+)$/, (req, res, body, url, m) => {
      const timer = setTimeout(() => sendJson(res, 200, { delayed: Number(m[1]) }), Number(m[1]));
      res.on('close', () => clearTimeout(timer));
    }],
    ['GET', /^\/test\/bytes\/(\d+)$/, (req, res, body, url, m) => {
      const n = Number(m[1]);
      if (url.searchParams.get('gzip') === '1' && /\bgzip\b/.test(req.headers['accept-encoding'] || '')) {
        const gz = zlib.gzipSync(patternChunk(0, n));
        res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Encoding': 'gzip', 'Content-Length': gz.length });
        res.end(gz);
        return;
      }
      const headers = { 'Content-Type': 'application/octet-stream' };
      if (url.searchParams.get('chunked') !== '1') headers['Content-Length'] = n;
      res.writeHead(200, headers);
      streamPattern(res, n, () => res.end());
    }],
    ['GET', /^\/test\/drop\/(\d+)$/, (req, res, body, url, m) => {
      const n = Number(m[1]);
      res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': n * 2 });
      streamPattern(res, n, () => setTimeout(() => req.socket.destroy(), 20));
    }],
    ['GET', /^\/test\/redirect$/, (req, res, body, url) => {
      res.writeHead(Number(url.searchParams.get('code') || 302), { Location: url.searchParams.get('to'), 'Content-Length': 0 });
      res.end();
    }],
    ['GET', /^\/test\/redirect-chain\/(\d+)$/, (req, res, body, url, m) => {
      const k = Number(m[1]);
      if (k === 0) return sendJson(res, 200, { done: true });
      res.writeHead(302, { Location: `/test/redirect-chain/${k - 1}`, 'Content-Length': 0 });
      res.end();
    }],
    ['GET', /^\/test\/headers$/, (req, res) => {
      res.setHeader('Set-Cookie', ['a=1', 'b=2']);
      res.setHeader('X-Multi', ['one', 'two']);
      res.setHeader('Content-Length', 2);
      res.end('ok');
    }],
    // Hashed as it arrives (a streaming route: body is null), so a test can
    // upload gigabytes without the sandbox holding them.
    ['*', /^\/test\/upload$/, (req, res) => {
      const hash = crypto.createHash('sha256');
      let bytes = 0;
      req.on('data', (c) => {
        bytes += c.length;
        hash.update(c);
      });
      req.on('end', () => sendJson(res, 200, { bytes, sha256: hash.digest('hex') }));
    }, { stream: true }],
    // A report download: ?disposition= is sent verbatim as Content-Disposition
    // (or ?disposition_b64=, its bytes in base64url);
    // kind=zip|truncated|text; rows=N sizes the report inside.
    ['GET', /^\/test\/download$/, (req, res, body, url) => {
      const rows = Number(url.searchParams.get('rows') || 100);
      const lines = ['Name,Permission'];
      for (let i = 0; i < rows; i++) lines.push(`user${i},Read`);
      let data = createZip([{ name: 'report.csv', data: lines.join('\n'), compress: true }]);
      const kind = url.searchParams.get('kind') || 'zip';
      if (kind === 'truncated') data = data.subarray(0, data.length - 30);
      if (kind === 'text') data = Buffer.from(lines.join('\n'));
      const headers = { 'Content-Type': kind === 'text' ? 'text/csv' : 'application/zip', 'Content-Length': data.length };
      if (url.searchParams.has('disposition')) headers['Content-Disposition'] = url.searchParams.get('disposition');
      // disposition_b64: the header's raw bytes, base64url (non-ASCII names as a server sends them)
      if (url.searchParams.has('disposition_b64')) {
        headers['Content-Disposition'] = Buffer.from(url.searchParams.get('disposition_b64'), 'base64url').toString('latin1');
      }
      res.writeHead(200, headers);
      res.end(data);
    }],
    // Identity services that misbehave, each under /test/oidc/<name>: its
    // discovery document names it as issuer. redirect-token: the token
    // endpoint redirects (307) to another origin; redirect-discovery: the
    // discovery answer redirects to another origin; same-origin: it
    // redirects within the origin; echo: the token endpoint refuses with the
    // request body as its error_description.
    ['GET', /^\/test\/oidc\/([\w-]+)\/(\.well-known\/openid-configuration|config)$/, (req, res, body, url, m) => {
      const base = `${req.socket.encrypted ? 'https' : 'http'}://${req.headers.host}/test/oidc/${m[1]}`;
      const elsewhere = `${req.socket.encrypted ? 'https' : 'http'}://localhost:${req.socket.localPort}/test/echo`;
      if (m[1] === 'redirect-discovery') {
        res.writeHead(302, { Location: elsewhere, 'Content-Length': 0 });
        return res.end();
      }
      if (m[1] === 'same-origin' && m[2] !== 'config') {
        res.writeHead(302, { Location: `/test/oidc/${m[1]}/config`, 'Content-Length': 0 });
        return res.end();
      }
      sendJson(res, 200, { issuer: base, token_endpoint: `${base}/token` });
    }],
    ['POST', /^\/test\/oidc\/([\w-]+)\/token$/, (req, res, body, url, m) => {
      if (m[1] === 'redirect-token') {
        const elsewhere = `${req.socket.encrypted ? 'https' : 'http'}://localhost:${req.socket.localPort}/test/echo`;
        res.writeHead(307, { Location: elsewhere, 'Content-Length': 0 });
        return res.end();
      }
      sendJson(res, 400, { error: 'invalid_client', error_description: `cannot accept ${body.toString('latin1')}` });
    }],
    ['GET', /^\/test\/small$/, (req, res) => sendJson(res, 200, { ok: true })],
    ['GET', /^\/test\/stats$/, (req, res) => sendJson(res, 200, stats)],
    ['POST', /^\/test\/stats\/reset$/, (req, res) => {
      for (const k of Object.keys(stats)) stats[k] = 0;
      sendJson(res, 200, stats);
    }],
  ];
  return routes;
}

module.exports = { createTestRoutes, sendJson };
