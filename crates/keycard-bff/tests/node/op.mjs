// node-oidc-provider as the second OpenID provider of the keycard-bff tests: one confidential
// client (the BFF under test) with code + refresh, RP-initiated logout and back-channel logout.
// The dev interactions serve the login form (any password works); consent is granted up front.
//
// env: PORT, CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, POST_LOGOUT_REDIRECT_URI,
//      BACKCHANNEL_LOGOUT_URI, AT_TTL (access-token lifetime in seconds).
// Prints "ready" on stdout when it listens.
import { generateKeyPair, exportJWK } from 'jose';
import Provider from 'oidc-provider';

const env = (name) => {
  const v = process.env[name];
  if (!v) {
    console.error(`${name} is required`);
    process.exit(2);
  }
  return v;
};
const PORT = Number.parseInt(env('PORT'), 10);
const ISSUER = `http://127.0.0.1:${PORT}`;
const CLIENT_ID = env('CLIENT_ID');

const { privateKey } = await generateKeyPair('RS256', { extractable: true, modulusLength: 2048 });
const jwk = await exportJWK(privateKey);
Object.assign(jwk, { alg: 'RS256', use: 'sig', kid: 'op-rs256' });

const provider = new Provider(ISSUER, {
  clients: [{
    client_id: CLIENT_ID,
    client_secret: env('CLIENT_SECRET'),
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    redirect_uris: [env('REDIRECT_URI')],
    post_logout_redirect_uris: [env('POST_LOGOUT_REDIRECT_URI')],
    backchannel_logout_uri: env('BACKCHANNEL_LOGOUT_URI'),
    backchannel_logout_session_required: true,
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  jwks: { keys: [jwk] },
  features: {
    devInteractions: { enabled: true },
    backchannelLogout: { enabled: true },
    revocation: { enabled: true },
    rpInitiatedLogout: { enabled: true },
  },
  pkce: { required: () => true },
  // node-oidc-provider refuses outgoing requests to special-use addresses (SSRF protection);
  // the BFF under test listens on 127.0.0.1, so back-channel logout goes out without it.
  fetch: (url, options) => {
    delete options.dispatcher;
    return globalThis.fetch(url, options);
  },
  scopes: ['openid', 'offline_access', 'profile', 'email'],
  claims: { openid: ['sub'], profile: ['name'], email: ['email'] },
  ttl: { AccessToken: Number.parseInt(process.env.AT_TTL ?? '60', 10) },
  // Refresh tokens for every code exchange (without the offline_access + prompt=consent dance).
  issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
  // A new session id (sid) per login is node-oidc-provider's default; accounts are made up.
  findAccount: async (ctx, sub) => ({
    accountId: sub,
    claims: async () => ({ sub, name: 'Alice Example', email: `${sub}@example.com` }),
  }),
  // Consent is granted at once, so the dev interactions ask only for the login.
  loadExistingGrant: async (ctx) => {
    const grantId = ctx.oidc.result?.consent?.grantId
      || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope('openid offline_access profile email');
    await grant.save();
    return grant;
  },
});
provider.on('backchannel.error', (ctx, err, client) => console.error('backchannel.error', client?.clientId, err.message));
provider.on('backchannel.success', (ctx, client) => console.log('backchannel.success', client.clientId));
provider.listen(PORT, '127.0.0.1', () => console.log('ready'));
