// A real OpenID Connect provider for Orchard's tests (Rust integration tests and Playwright).
//
// Built on the `oidc-provider` package with its development login form: any password is
// accepted, the login name picks one of the accounts below. Consent is implied for the
// configured clients (first-party), so a sign-in is: authorization URL → login form → back
// to the redirect URI with a code. Keys are generated at each start, so tokens from an
// earlier run never verify. Plain http on 127.0.0.1 only; never expose this.
//
//   node end2end/oidc/provider.mjs [PORT]
//
// Environment (all optional):
//   OIDC_PORT            port to listen on (argv[2] wins; 0 or unset picks a free port)
//   OIDC_CLIENT_ID       static client id, default "orchard"; "<id>-post" is a second client
//                        using client_secret_post and ES256-signed ID tokens
//   OIDC_CLIENT_SECRET   secret of both clients, default "orchard-test-secret"
//   OIDC_REDIRECT_URIS   comma-separated redirect URIs allowed for both clients, default
//                        http://127.0.0.1:${ORCHARD_E2E_PORT:-3000}/auth/oidc/callback
//
// Tampering accounts (for the rejection tests): the ID token of `mallory-<how>` is altered on
// its way out of the token endpoint and signed again with the provider's own key, so that
// exactly one check fails at the relying party: `mallory-issuer` (another issuer),
// `mallory-audience` (another client), `mallory-expired` (expired an hour ago),
// `mallory-signature` (signed by a key the provider never published, under its kid).
// `mallory-resigned` goes through the same re-signing unchanged: the control that shows the
// re-signing itself yields a valid token. All of them are in the administrators' group, so
// a token that slipped through would sign in with every right.
//
// Once listening it prints exactly one line to stdout:
//   OIDC provider ready at http://127.0.0.1:PORT
// and the issuer is that URL (no trailing slash).
import http from "node:http";
import { createPrivateKey, generateKeyPairSync, randomBytes, sign } from "node:crypto";
import Provider from "oidc-provider";

/** Test accounts: login name → claims. Group names are what Orchard's role map matches. */
const ACCOUNTS = {
  alice: { name: "Alice Admin", email: "alice@example.test", groups: ["orchard-admins", "orchard-helpdesk"] },
  olivia: { name: "Olivia Operator", email: "olivia@example.test", groups: ["orchard-operators"] },
  hank: { name: "Hank Helpdesk", email: "hank@example.test", groups: ["orchard-helpdesk"] },
  victor: { name: "Victor Viewer", email: "victor@example.test", groups: ["orchard-viewers"] },
  nora: { name: "Nora Nogroups", email: "nora@example.test", groups: [] },
};
for (const how of Object.keys(tamperings())) {
  ACCOUNTS[`mallory-${how}`] = { name: `Mallory ${how}`, email: `mallory-${how}@example.test`, groups: ["orchard-admins"] };
}

const port = Number(process.argv[2] ?? process.env.OIDC_PORT ?? 0);
const clientId = process.env.OIDC_CLIENT_ID || "orchard";
const clientSecret = process.env.OIDC_CLIENT_SECRET || "orchard-test-secret";
const redirectUris = (
  process.env.OIDC_REDIRECT_URIS ||
  `http://127.0.0.1:${process.env.ORCHARD_E2E_PORT || 3000}/auth/oidc/callback`
)
  .split(",")
  .map((uri) => uri.trim())
  .filter(Boolean);

function signingKeys() {
  const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ format: "jwk" });
  const ec = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ format: "jwk" });
  return [
    { ...rsa, kid: `rsa-${randomBytes(4).toString("hex")}`, alg: "RS256", use: "sig" },
    { ...ec, kid: `ec-${randomBytes(4).toString("hex")}`, alg: "ES256", use: "sig" },
  ];
}

/**
 * How each tampering account's ID token claims are altered, and which key signs the result
 * (`true`: a key the provider never published).
 */
function tamperings(issuer = "", now = 0) {
  return {
    issuer: { claims: (c) => ({ ...c, iss: `${issuer}/elsewhere` }) },
    audience: { claims: (c) => ({ ...c, aud: "another-client", azp: "another-client" }) },
    expired: { claims: (c) => ({ ...c, iat: now - 7200, exp: now - 3600, auth_time: now - 7200 }) },
    signature: { claims: (c) => c, foreignKey: true },
    resigned: { claims: (c) => c },
  };
}

const base64url = (value) => Buffer.from(value).toString("base64url");
const decode = (part) => JSON.parse(Buffer.from(part, "base64url").toString("utf8"));

/** Re-signs an RS256 ID token after `alter` changed its claims; ES256 tokens pass untouched. */
function tamper(idToken, keys, issuer) {
  const [headerPart, claimsPart] = idToken.split(".");
  const header = decode(headerPart);
  const claims = decode(claimsPart);
  const how = typeof claims.sub === "string" && claims.sub.startsWith("mallory-") ? claims.sub.slice(8) : null;
  const tampering = how && tamperings(issuer, Math.floor(Date.now() / 1000))[how];
  if (!tampering || header.alg !== "RS256") return idToken;
  const key = tampering.foreignKey
    ? generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey
    : createPrivateKey({ key: keys.find((key) => key.kid === header.kid), format: "jwk" });
  const input = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(tampering.claims(claims)))}`;
  return `${input}.${sign("sha256", Buffer.from(input), key).toString("base64url")}`;
}

// Listen first so that port 0 works: the issuer must contain the real port.
const server = http.createServer();
server.listen(port, "127.0.0.1", () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const client = {
    client_id: clientId,
    client_secret: clientSecret,
    redirect_uris: redirectUris,
    grant_types: ["authorization_code"],
    response_types: ["code"],
    token_endpoint_auth_method: "client_secret_basic",
    id_token_signed_response_alg: "RS256",
  };
  const keys = signingKeys();
  const provider = new Provider(issuer, {
    clients: [
      client,
      {
        ...client,
        client_id: `${clientId}-post`,
        token_endpoint_auth_method: "client_secret_post",
        id_token_signed_response_alg: "ES256",
      },
    ],
    jwks: { keys },
    cookies: { keys: [randomBytes(32).toString("hex")] },
    pkce: { required: () => true },
    features: { devInteractions: { enabled: true } },
    // Put the scope claims (groups included) in the ID token, not only at userinfo.
    conformIdTokenClaims: false,
    scopes: ["openid", "profile", "email", "groups"],
    claims: {
      openid: ["sub"],
      profile: ["name", "preferred_username"],
      email: ["email", "email_verified"],
      groups: ["groups"],
    },
    async findAccount(_ctx, id) {
      const account = ACCOUNTS[id];
      if (!account) return undefined;
      return {
        accountId: id,
        async claims() {
          return {
            sub: id,
            name: account.name,
            preferred_username: id,
            email: account.email,
            email_verified: true,
            groups: account.groups,
          };
        },
      };
    },
    // The test clients are first-party: grant what they ask for without a consent page.
    async loadExistingGrant(ctx) {
      const existing = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
      if (existing) return ctx.oidc.provider.Grant.find(existing);
      const grant = new ctx.oidc.provider.Grant({
        clientId: ctx.oidc.client.clientId,
        accountId: ctx.oidc.session.accountId,
      });
      grant.addOIDCScope("openid profile email groups");
      await grant.save();
      return grant;
    },
  });
  provider.use(async (ctx, next) => {
    await next();
    if (ctx.oidc?.route === "token" && typeof ctx.body?.id_token === "string") {
      ctx.body = { ...ctx.body, id_token: tamper(ctx.body.id_token, keys, issuer) };
    }
  });
  server.on("request", provider.callback());
  console.log(`OIDC provider ready at ${issuer}`);
});

for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
