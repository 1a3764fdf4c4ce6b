// The OpenID Connect provider the sign-in tests start on loopback: panva's oidc-provider,
// configured (not reimplemented) with one client and the test's accounts and their claims.
// Usage: node provider.mjs CONFIG.json, where CONFIG holds port, client_id, client_secret,
// redirect_uris, post_logout_redirect_uris and accounts ({login: {claim: value}}). Any login
// signs in with any password (the library's development login pages); a login that is not
// in accounts gets no claims beyond its name. Prints "listening ISSUER" once it accepts requests.
import { readFileSync } from 'node:fs';
import Provider from 'oidc-provider';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const issuer = `http://127.0.0.1:${config.port}`;

const provider = new Provider(issuer, {
  clients: [{
    client_id: config.client_id,
    client_secret: config.client_secret,
    redirect_uris: config.redirect_uris,
    post_logout_redirect_uris: config.post_logout_redirect_uris,
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_post',
  }],
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        return { sub: id, preferred_username: id, ...(config.accounts[id] || {}) };
      },
    };
  },
  claims: { openid: ['sub'], profile: ['preferred_username', 'name'], email: ['email'], roles: ['zoolens_role'] },
  // Put the scopes' claims into the ID token, which is what the relying party reads.
  conformIdTokenClaims: false,
  // Panel's generic OAuth login sends no PKCE challenge; it is a confidential client with a secret.
  pkce: { required: () => false },
  cookies: { keys: ['a-test-only-cookie-key'] },
  features: { devInteractions: { enabled: true }, rpInitiatedLogout: { enabled: true } },
});
provider.proxy = false;

const server = provider.listen(config.port, '127.0.0.1', () => {
  console.log(`listening ${issuer}`);
});
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
