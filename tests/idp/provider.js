// A real OpenID Connect provider (the `oidc-provider` package) for the portal's single sign-on
// tests. Test-only: it signs in whoever names an account, on loopback.
//
//   node tests/idp/provider.js CONFIG.json
//
// CONFIG: {"port": 0, "clients": [...], "accounts": [...]}. Each client: client_id,
// client_secret, redirect_uris, and test knobs: id_token_ttl (seconds), id_token_audience (the
// `aud` its ID tokens carry instead of its client_id), id_token_foreign_key (true: its ID tokens
// are signed with a key the JWKS does not have). Each account: sub,
// preferred_username, email, name, groups, and the amr/acr its sign-in reports.
// Listens on 127.0.0.1 (port 0: any free one) and prints "READY <issuer>" once it answers.
//
// Test-only endpoints: PUT /test/accounts/<sub> (JSON: the account's new claims, merged).
import { generateKeyPairSync, randomUUID, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';

import Provider from 'oidc-provider';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const accounts = new Map(config.accounts.map((account) => [account.sub, { ...account }]));
const knobs = new Map(config.clients.map((client) => [client.client_id, client]));

function accountNamed(login) {
  const wanted = String(login || '').trim();
  if (accounts.has(wanted)) return accounts.get(wanted);
  return [...accounts.values()].find((account) => account.preferred_username === wanted);
}

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function send(res, status, body, type = 'text/html; charset=utf-8') {
  res.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-store' });
  res.end(body);
}

function loginPage(uid, clientId, error = '') {
  return `<!doctype html>
<html><head><title>Test identity provider: sign in</title></head>
<body>
<h1>Test identity provider</h1>
<p>Sign in to <strong>${escapeHtml(clientId)}</strong>.</p>
${error ? `<p role="alert">${escapeHtml(error)}</p>` : ''}
<form method="post" action="/interaction/${escapeHtml(uid)}">
  <label for="login">Username</label>
  <input id="login" name="login" autocomplete="username" autofocus>
  <button type="submit" name="action" value="login">Sign in to the provider</button>
  <button type="submit" name="action" value="cancel">Cancel</button>
</form>
</body></html>`;
}

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
// Test knob: a key the provider's JWKS does not have, to sign ID tokens nobody should accept.
const foreignKey = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), use: 'sig', alg: 'RS256' };

let provider;

async function interaction(req, res, uid) {
  const details = await provider.interactionDetails(req, res);
  const clientId = details.params.client_id;
  if (req.method === 'GET') {
    send(res, 200, loginPage(uid, clientId));
    return;
  }
  const form = new URLSearchParams(await readBody(req));
  if (form.get('action') === 'cancel') {
    await provider.interactionFinished(
      req,
      res,
      { error: 'access_denied', error_description: 'The user canceled the sign-in.' },
      { mergeWithLastSubmission: false },
    );
    return;
  }
  const account = accountNamed(form.get('login'));
  if (!account) {
    send(res, 200, loginPage(uid, clientId, 'No such account.'));
    return;
  }
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId: account.sub, clientId });
  grant.addOIDCScope(details.params.scope);
  const missing = details.prompt.details.missingOIDCClaims;
  if (missing) grant.addOIDCClaims(missing);
  const grantId = await grant.save();
  const login = { accountId: account.sub };
  if (account.amr) login.amr = account.amr;
  if (account.acr) login.acr = account.acr;
  await provider.interactionFinished(
    req,
    res,
    { login, consent: { grantId } },
    { mergeWithLastSubmission: false },
  );
}

async function testEndpoint(req, res, sub) {
  if (req.method !== 'PUT') {
    send(res, 405, '{"error":"PUT only"}', 'application/json');
    return;
  }
  const changes = JSON.parse((await readBody(req)) || '{}');
  const account = { ...(accounts.get(sub) || {}), ...changes, sub };
  accounts.set(sub, account);
  send(res, 200, JSON.stringify(account), 'application/json');
}

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, 'http://127.0.0.1');
  try {
    let match = url.pathname.match(/^\/interaction\/([^/]+)$/);
    if (match) {
      await interaction(req, res, match[1]);
      return;
    }
    match = url.pathname.match(/^\/test\/accounts\/([^/]+)$/);
    if (match) {
      await testEndpoint(req, res, decodeURIComponent(match[1]));
      return;
    }
    provider.callback()(req, res);
  } catch (error) {
    send(res, 500, `provider script error: ${escapeHtml(error.message)}`, 'text/plain');
  }
});

server.listen(config.port || 0, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  provider = new Provider(issuer, {
    clients: config.clients.map((client) => ({
      client_id: client.client_id,
      client_secret: client.client_secret,
      redirect_uris: client.redirect_uris,
      grant_types: ['authorization_code'],
      response_types: ['code'],
    })),
    jwks: { keys: [signingKey] },
    cookies: { keys: [randomUUID()] },
    pkce: { required: () => true },
    scopes: ['openid', 'email', 'profile', 'groups'],
    acrValues: ['urn:pim:test:mfa', 'urn:pim:test:password'],
    claims: {
      // Always in the ID token, as Entra ID and others send them (not only when requested).
      openid: ['sub', 'acr', 'amr'],
      email: ['email', 'email_verified'],
      profile: ['name', 'preferred_username'],
      groups: ['groups'],
    },
    features: { devInteractions: { enabled: false } },
    interactions: { url: (ctx, interactionRecord) => `/interaction/${interactionRecord.uid}` },
    ttl: {
      IdToken: (ctx, token, client) => knobs.get(client.clientId)?.id_token_ttl || 3600,
      AccessToken: 3600,
      AuthorizationCode: 60,
      Grant: 3600,
      Interaction: 600,
      Session: 3600,
    },
    async findAccount(ctx, sub) {
      if (!accounts.has(sub)) return undefined;
      return {
        accountId: sub,
        async claims() {
          const account = accounts.get(sub);
          const { amr, acr, ...claims } = account;
          return { email_verified: true, ...claims, sub };
        },
      };
    },
  });

  // Test knobs: ID tokens for another audience, or signed with a key not in the JWKS.
  const issue = provider.IdToken.prototype.issue;
  provider.IdToken.prototype.issue = async function issueForKnob(options) {
    const knob = knobs.get(this.client?.clientId) || {};
    if (options?.use !== 'idtoken') return issue.call(this, options);
    if (knob.id_token_audience) {
      this.client = Object.create(this.client, { clientId: { value: knob.id_token_audience } });
    }
    const token = await issue.call(this, options);
    if (!knob.id_token_foreign_key) return token;
    const signed = token.split('.').slice(0, 2).join('.');
    return `${signed}.${sign('sha256', Buffer.from(signed), foreignKey).toString('base64url')}`;
  };
  process.stdout.write(`READY ${issuer}\n`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => process.exit(0));
}
