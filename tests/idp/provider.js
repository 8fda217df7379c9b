// The OpenID provider the end-to-end login tests run against: panva's oidc-provider (a
// certified OP) with its development login and consent pages (any login, any password).
//
//   node tests/idp/provider.js <port> [--host 127.0.0.1|localhost] [--client-id ID]
//     [--client-secret SECRET] [--redirect-uri URI] [--post-logout-redirect-uri URI]
//     [--access-token-ttl SECONDS]
//
// Each option may come from the environment instead (IDP_HOST, IDP_CLIENT_ID, ...; a flag
// wins). The issuer is http://<host>:<port>: serve the IdP as `localhost` and Envoy as
// 127.0.0.1 (or the reverse) so that the browser sees two sites and SameSite counts. One
// confidential client (client_secret_basic or client_secret_post), PKCE S256 required,
// refresh tokens (asked with offline_access and prompt=consent) rotated on every use, so a
// reused one gets invalid_grant, RP-initiated logout at /session/end. Prints one line
// `IDP READY <issuer>` when it listens; stops on SIGTERM or SIGINT.

import { parseArgs } from 'node:util';
import Provider from 'oidc-provider';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    host: { type: 'string' },
    'client-id': { type: 'string' },
    'client-secret': { type: 'string' },
    'redirect-uri': { type: 'string' },
    'post-logout-redirect-uri': { type: 'string' },
    'access-token-ttl': { type: 'string' },
  },
});

const setting = (flag, env, fallback) => values[flag] ?? process.env[env] ?? fallback;

const port = Number(positionals[0] ?? process.env.IDP_PORT);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  console.error('usage: node provider.js <port> [options]: see the comment at the top');
  process.exit(2);
}
const host = setting('host', 'IDP_HOST', '127.0.0.1');
if (host !== '127.0.0.1' && host !== 'localhost') {
  console.error(`--host must be 127.0.0.1 or localhost, not ${host}`);
  process.exit(2);
}
const redirectUri = setting('redirect-uri', 'IDP_REDIRECT_URI', 'http://127.0.0.1:8080/oauth2/callback');
const postLogout = setting(
  'post-logout-redirect-uri',
  'IDP_POST_LOGOUT_REDIRECT_URI',
  `${new URL(redirectUri).origin}/`,
);
const accessTokenTtl = Number(setting('access-token-ttl', 'IDP_ACCESS_TOKEN_TTL', '3600'));
if (!Number.isInteger(accessTokenTtl) || accessTokenTtl <= 0) {
  console.error('--access-token-ttl must be a positive number of seconds');
  process.exit(2);
}

const issuer = `http://${host}:${port}`;
const configuration = {
  clients: [
    {
      client_id: setting('client-id', 'IDP_CLIENT_ID', 'gateway'),
      client_secret: setting('client-secret', 'IDP_CLIENT_SECRET', 'gateway-secret'),
      redirect_uris: [redirectUri],
      post_logout_redirect_uris: [postLogout],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      // Accepts both: the filter's client_auth chooses.
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  clientAuthMethods: ['client_secret_basic', 'client_secret_post'],
  pkce: { required: () => true },
  rotateRefreshToken: true,
  ttl: { AccessToken: accessTokenTtl },
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  // Whoever logs in exists: the login name is the subject.
  async findAccount(_ctx, sub) {
    return {
      accountId: sub,
      async claims() {
        return { sub, email: `${sub}@example.com`, email_verified: true, name: sub };
      },
    };
  },
  features: {
    devInteractions: { enabled: true },
    rpInitiatedLogout: { enabled: true },
    revocation: { enabled: true },
  },
  // The scopes' claims go into the ID token too (as Keycloak and Auth0 do), not only to
  // userinfo: the filter's session identity is the ID token's claims.
  conformIdTokenClaims: false,
  // Fixed test-only keys for the IdP's own interaction cookies.
  cookies: { keys: ['envoy-jwt-authz test idp, not a secret'] },
};

const provider = new Provider(issuer, configuration);
const server = provider.listen(port, '127.0.0.1', () => {
  console.log(`IDP READY ${issuer}`);
});
server.on('error', (err) => {
  console.error(`idp: ${err.message}`);
  process.exit(1);
});
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    server.close(() => process.exit(0));
    // Keep-alive connections would hold close() open.
    server.closeAllConnections();
  });
}
