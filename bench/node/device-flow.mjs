// node-oidc-provider with the device authorization grant (RFC 8628), for the `keycard auth`
// interop test in crates/keycard-cli/tests/it/auth_interop.rs. Its development interactions
// sign in any login with any password; the public client `keycard-cli` may use the device
// flow and refresh tokens, and revoke them (RFC 7009).
//
// env: PORT (default 18200).
import Provider from 'oidc-provider';

const PORT = Number.parseInt(process.env.PORT ?? '18200', 10);
const ISSUER = `http://127.0.0.1:${PORT}`;

const provider = new Provider(ISSUER, {
  clients: [
    {
      client_id: 'keycard-cli',
      application_type: 'native',
      token_endpoint_auth_method: 'none',
      grant_types: ['urn:ietf:params:oauth:grant-type:device_code', 'refresh_token'],
      response_types: [],
      redirect_uris: [],
    },
  ],
  scopes: ['openid', 'offline_access', 'profile'],
  cookies: { keys: ['device-flow-cookie-key-not-secret'] },
  features: {
    devInteractions: { enabled: true },
    deviceFlow: { enabled: true },
    revocation: { enabled: true },
  },
  issueRefreshToken: async (ctx, client, code) => client.grantTypeAllowed('refresh_token')
    && code.scopes.has('offline_access'),
});

provider.on('server_error', (ctx, err) => {
  console.error('server_error', err);
});

const server = provider.listen(PORT, '127.0.0.1', () => {
  console.log(`node-oidc-provider with the device flow on ${ISSUER}`);
});
const shutdown = () => server.close(() => process.exit(0));
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
