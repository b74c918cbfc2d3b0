// A real OpenID Connect provider for the werkbak's browser tests: the certified oidc-provider
// package with its development sign-in form. Usage: node provider.mjs PORT, with the clients and
// accounts as JSON in OIDC_CLIENTS and OIDC_ACCOUNTS. Prints "ready" when it listens.
import Provider from "oidc-provider";

const port = Number(process.argv[2]);
const issuer = `http://127.0.0.1:${port}`;
const clients = JSON.parse(process.env.OIDC_CLIENTS);
// login -> claims (name, roles, oin); a login that is not listed signs in without any claim.
const accounts = JSON.parse(process.env.OIDC_ACCOUNTS);

const provider = new Provider(issuer, {
  clients,
  cookies: { keys: ["werkbak-browser-tests-cookie-key"] },
  claims: { openid: ["sub"], profile: ["name", "roles", "oin"] },
  // The werkbak reads the person's roles from the ID token.
  conformIdTokenClaims: false,
  features: { devInteractions: { enabled: true } },
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        return { sub: id, ...(accounts[id] ?? {}) };
      },
    };
  },
  // First-party clients: the organisation's own werkbak needs no consent screen.
  async loadExistingGrant(ctx) {
    const grantId =
      ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) {
      return ctx.oidc.provider.Grant.find(grantId);
    }
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope("openid profile");
    await grant.save();
    return grant;
  },
});

provider.listen(port, "127.0.0.1", () => {
  console.log("ready");
});
