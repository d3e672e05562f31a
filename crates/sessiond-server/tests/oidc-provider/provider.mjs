// A real OpenID provider for sessiond's OpenID Connect tests: node `oidc-provider` (certified by
// the OpenID Foundation), configured with one confidential client, PKCE required, userinfo and
// RP-initiated logout.
//
// It listens on a free loopback port and prints `ready <port>` once it serves. Its login page is
// the only part made for tests: `GET /interaction/<uid>?user=<name>` signs <name> in and grants
// the scopes asked for, with no password, so a test can drive the whole code flow over HTTP;
// without `user` it shows a form (`#user` and a button) that asks for it, for a browser.
//
// Environment: OIDC_CLIENT_ID, OIDC_CLIENT_SECRET, OIDC_REDIRECT_URIS and
// OIDC_POST_LOGOUT_REDIRECT_URIS (comma-separated).
import http from 'node:http';
import Provider from 'oidc-provider';

const list = (name) => (process.env[name] || '').split(',').filter(Boolean);

// People the provider knows; anyone else signs in with only a subject.
const accounts = {
  alice: { preferred_username: 'alice', name: 'Alice Liddell', email: 'alice@example.com', email_verified: true, groups: ['dev', 'ops'] },
  bob: { preferred_username: 'bob', name: 'Bob', email: 'bob@example.com', email_verified: false, groups: [] },
};

const configuration = {
  clients: [{
    client_id: process.env.OIDC_CLIENT_ID || 'sessiond',
    client_secret: process.env.OIDC_CLIENT_SECRET || 'sessiond-test-secret',
    redirect_uris: list('OIDC_REDIRECT_URIS'),
    post_logout_redirect_uris: list('OIDC_POST_LOGOUT_REDIRECT_URIS'),
    response_types: ['code'],
    grant_types: ['authorization_code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  pkce: { required: () => true },
  claims: {
    openid: ['sub'],
    profile: ['name', 'preferred_username'],
    email: ['email', 'email_verified'],
    groups: ['groups'],
  },
  scopes: ['openid', 'profile', 'email', 'groups'],
  features: {
    devInteractions: { enabled: false },
    rpInitiatedLogout: { enabled: true },
  },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  cookies: { keys: ['sessiond-test-cookie-key'] },
  async findAccount(ctx, sub) {
    return { accountId: sub, async claims() { return { sub, ...(accounts[sub] || {}) }; } };
  },
};

const server = http.createServer();
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const provider = new Provider(`http://127.0.0.1:${port}`, configuration);
  provider.use(async (ctx, next) => {
    const match = ctx.path.match(/^\/interaction\/([^/]+)$/);
    if (!match || ctx.method !== 'GET') return next();
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    const user = ctx.query.user;
    if (!user) {
      ctx.type = 'html';
      ctx.body = '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Test provider: sign in</title></head>'
        + '<body><h1>Test OpenID provider</h1><form method="get">'
        + '<label for="user">User</label> <input id="user" name="user" autocomplete="off"> '
        + '<button type="submit">Sign in</button></form></body></html>';
      return undefined;
    }
    const grant = new provider.Grant({ accountId: user, clientId: details.params.client_id });
    grant.addOIDCScope(details.params.scope);
    const grantId = await grant.save();
    const to = await provider.interactionResult(ctx.req, ctx.res,
      { login: { accountId: user }, consent: { grantId } }, { mergeWithLastSubmission: false });
    ctx.status = 303;
    ctx.redirect(to);
    return undefined;
  });
  server.on('request', provider.callback());
  console.log(`ready ${port}`);
});
