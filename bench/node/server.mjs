// node-oidc-provider peer for the Keycard benchmark (bench/phases/peer.mjs).
//
// A single node process (no cluster): this is how node-oidc-provider is
// usually deployed per instance. One confidential client doing
// client_credentials, with a resource indicator that makes the token endpoint
// issue JWT access tokens signed with ALG.
//
// env: PORT (default 18100), ALG (RS256 | ES256, default RS256),
//      CLIENT_ID / CLIENT_SECRET (defaults below),
//      TOKEN_FORMAT (jwt | opaque, default jwt): the resource server's
//      accessTokenFormat. node-oidc-provider refuses to introspect JWT access
//      tokens ("Structured JWT Tokens cannot be introspected"), so the
//      introspection phase runs it with opaque access tokens (kept in its
//      in-memory adapter). Introspection is enabled in both modes; the client
//      introspects its own tokens with client_secret_basic.
import { generateKeyPair, exportJWK } from 'jose';
import Provider from 'oidc-provider';

const PORT = Number.parseInt(process.env.PORT ?? '18100', 10);
const ALG = process.env.ALG ?? 'RS256';
const CLIENT_ID = process.env.CLIENT_ID ?? 'bench-cc';
const CLIENT_SECRET = process.env.CLIENT_SECRET ?? 'bench-cc-secret-0123456789abcdef0123456789abcdef';
const RESOURCE = 'https://api.example.com';
const ISSUER = `http://127.0.0.1:${PORT}`;
const TOKEN_FORMAT = process.env.TOKEN_FORMAT ?? 'jwt';

if (!['RS256', 'ES256'].includes(ALG)) {
  console.error(`unsupported ALG ${ALG} (want RS256 or ES256)`);
  process.exit(2);
}
if (!['jwt', 'opaque'].includes(TOKEN_FORMAT)) {
  console.error(`unsupported TOKEN_FORMAT ${TOKEN_FORMAT} (want jwt or opaque)`);
  process.exit(2);
}

const { privateKey } = await generateKeyPair(ALG, { extractable: true, modulusLength: 2048 });
const jwk = await exportJWK(privateKey);
jwk.alg = ALG;
jwk.use = 'sig';
jwk.kid = `bench-${ALG.toLowerCase()}`;

const resourceServer = {
  scope: 'read',
  audience: RESOURCE,
  accessTokenFormat: TOKEN_FORMAT,
  accessTokenTTL: 3600,
  ...(TOKEN_FORMAT === 'jwt' ? { jwt: { sign: { alg: ALG } } } : {}),
};

const provider = new Provider(ISSUER, {
  clients: [
    {
      client_id: CLIENT_ID,
      client_secret: CLIENT_SECRET,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
      introspection_endpoint_auth_method: 'client_secret_basic',
      scope: 'read',
    },
  ],
  jwks: { keys: [jwk] },
  scopes: ['openid', 'offline_access', 'read'],
  // The provider's own signing default; the resource server pins ALG anyway.
  clientDefaults: { id_token_signed_response_alg: ALG },
  cookies: { keys: ['bench-cookie-key-not-secret'] },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    // RFC 7662 at /token/introspection; the bench client introspects its own
    // tokens (a client_credentials token has no account, nothing to hide).
    introspection: { enabled: true, allowedPolicy: async () => true },
    revocation: { enabled: false },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => RESOURCE,
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resourceIndicator) => {
        if (resourceIndicator !== RESOURCE && resourceIndicator !== `${RESOURCE}/`) {
          throw new Provider.errors.InvalidTarget();
        }
        return resourceServer;
      },
    },
  },
});

provider.on('server_error', (ctx, err) => {
  console.error('server_error', err);
});

const server = provider.listen(PORT, '127.0.0.1', () => {
  console.log(`node-oidc-provider ${ALG} (${TOKEN_FORMAT} access tokens) listening on ${ISSUER} (pid ${process.pid}, single process)`);
});

const shutdown = () => server.close(() => process.exit(0));
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
