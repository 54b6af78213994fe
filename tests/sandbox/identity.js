'use strict';
// The sandbox's identity service: the real oidc-provider, mounted under
// /identity with AvePoint IdentityServer's paths (/connect/token), issuing
// JWT access tokens for client_credentials.
//
// Two apps sign in: one with a certificate (private_key_jwt), one with a
// client secret.

const crypto = require('crypto');
const fs = require('fs');

const SCOPE = 'insights.graph.readwrite.all';
const CLIENTS = { cert: 'auditrun-cert', secret: 'auditrun-secret', secret_value: 'sandbox-secret-value' };

function certificateJwk(pemFile) {
  const pem = fs.readFileSync(pemFile, 'utf8');
  const x509 = new crypto.X509Certificate(pem);
  const jwk = x509.publicKey.export({ format: 'jwk' });
  jwk.x5c = [x509.raw.toString('base64')];
  jwk.kid = crypto.createHash('sha256').update(x509.raw).digest('base64url').slice(0, 16);
  return jwk;
}

// The provider's own signing key, made per run; we keep the public half to
// check the access tokens the APIs receive.
function signingKey() {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  jwk.kid = 'sandbox-signing';
  jwk.use = 'sig';
  jwk.alg = 'RS256';
  return { jwk, publicKey };
}

async function createIdentity({ url, tokenTtl, clientCert, opaqueTokens = false }) {
  const { default: Provider } = await import('oidc-provider');
  const issuer = `${url}/identity`;
  const apiResource = `${url}/insights`;
  const { jwk, publicKey } = signingKey();
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: CLIENTS.cert,
        grant_types: ['client_credentials'],
        redirect_uris: [],
        response_types: [],
        token_endpoint_auth_method: 'private_key_jwt',
        jwks: { keys: [certificateJwk(clientCert)] },
      },
      {
        client_id: CLIENTS.secret,
        client_secret: CLIENTS.secret_value,
        grant_types: ['client_credentials'],
        redirect_uris: [],
        response_types: [],
        token_endpoint_auth_method: 'client_secret_post',
      },
    ],
    jwks: { keys: [jwk] },
    cookies: { keys: [crypto.randomBytes(16).toString('hex')] },
    scopes: [SCOPE],
    clientAuthMethods: ['private_key_jwt', 'client_secret_post'],
    enabledJWA: { clientAuthSigningAlgValues: ['RS256', 'PS256'] },
    routes: { token: '/connect/token', jwks: '/.well-known/openid-configuration/jwks' },
    ttl: { ClientCredentials: tokenTtl },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => apiResource,
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({
          scope: SCOPE,
          audience: apiResource,
          accessTokenTTL: tokenTtl,
          accessTokenFormat: opaqueTokens ? 'opaque' : 'jwt',
        }),
      },
    },
  });
  provider.on('server_error', (ctx, err) => console.error('identity server_error', err));
  // Behave like AvePoint's IdentityServer where oidc-provider is quieter:
  // name the reason a client assertion was refused (oidc-provider keeps it
  // in error_detail), and refuse scopes it does not know instead of
  // dropping them.
  provider.on('grant.error', (ctx, err) => {
    ctx.state.errorDetail = err.error_detail;
  });
  provider.use(async (ctx, next) => {
    await next();
    if (ctx.path !== '/connect/token' || !ctx.body || typeof ctx.body !== 'object') return;
    if (ctx.body.error && ctx.state.errorDetail) {
      ctx.body = { ...ctx.body, error_description: `${ctx.body.error_description} (${ctx.state.errorDetail})` };
    } else if (ctx.status === 200 && ctx.oidc && ctx.oidc.params && ctx.oidc.params.scope) {
      const unknown = ctx.oidc.params.scope.split(' ').filter((s) => s && s !== SCOPE);
      if (unknown.length) {
        ctx.status = 400;
        ctx.body = { error: 'invalid_scope', error_description: `unknown scope: ${unknown.join(' ')}` };
      }
    }
  });
  const callback = provider.callback();

  // Mounted the way express mounts it: the provider reads originalUrl to
  // find its prefix, and sees the rest in url.
  const faults = { tokenFailures: 0 };
  function handle(req, res) {
    if (req.url !== '/identity' && !req.url.startsWith('/identity/')) return false;
    if (faults.tokenFailures > 0 && req.url.startsWith('/identity/connect/token')) {
      // A token endpoint that is down for a moment, as seen by the client.
      faults.tokenFailures--;
      req.resume();
      res.writeHead(503, { 'Content-Type': 'application/json', 'Retry-After': '0' });
      res.end('{"error":"temporarily_unavailable"}');
      return true;
    }
    req.originalUrl = req.url;
    req.url = req.url.slice('/identity'.length) || '/';
    callback(req, res);
    return true;
  }

  // Checks a Bearer access token: our signature, our issuer, not expired,
  // the API's scope. Returns (a promise of) the claims or null. An opaque
  // token is looked up in the provider's store instead.
  async function verifyOpaque(req) {
    const m = /^Bearer ([\w-]+)$/.exec(req.headers.authorization || '');
    const token = m && await provider.ClientCredentials.find(m[1]);
    if (!token || !String(token.scope || '').split(' ').includes(SCOPE)) return null;
    return { iss: issuer, sub: token.clientId, client_id: token.clientId, scope: token.scope, exp: token.exp };
  }
  function verifyAccessToken(req) {
    if (opaqueTokens) return verifyOpaque(req);
    const m = /^Bearer ([\w-]+)\.([\w-]+)\.([\w-]+)$/.exec(req.headers.authorization || '');
    if (!m) return null;
    const ok = crypto.verify('RSA-SHA256', Buffer.from(`${m[1]}.${m[2]}`), publicKey, Buffer.from(m[3], 'base64url'));
    if (!ok) return null;
    let claims;
    try {
      claims = JSON.parse(Buffer.from(m[2], 'base64url').toString('utf8'));
    } catch {
      return null;
    }
    if (claims.iss !== issuer || typeof claims.exp !== 'number' || claims.exp * 1000 <= Date.now()) return null;
    if (!String(claims.scope || '').split(' ').includes(SCOPE)) return null;
    return claims;
  }

  return { issuer, tokenEndpoint: `${issuer}/connect/token`, handle, faults, verifyAccessToken, clients: CLIENTS, scope: SCOPE };
}

module.exports = { createIdentity };
