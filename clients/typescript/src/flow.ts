// The keygate API through the client that @hey-api/openapi-ts generates (its default
// fetch client). Generate the client into src/client, build, and run the flow against
// a keygate server on which nobody has signed up yet (the flow signs up the owner):
//
//   npm ci && npm run generate && npm run build
//   KEYGATE_URL=http://127.0.0.1:3000 npm start
//
// Every request goes through a generated SDK function, as generated. The program
// exits 1 with a message on the first answer that differs from what the spec promises.
import { randomBytes } from 'node:crypto';

import { type Auth, type Client, createClient, createConfig } from './client/client/index.js';
import {
  applicationCreate,
  authGetSession,
  authSignOut,
  authSignUp,
  type ClientOptions,
  type ErrorBody,
  projectAll,
  projectCreate,
  userCreateApiKey,
} from './client/index.js';

// What a generated SDK function resolves to (without throwOnError): the parsed body
// of a success in `data`, or the typed error body in `error`, and the raw response.
type Answer<T> = ({ data: T; error: undefined } | { data: undefined; error: ErrorBody }) & {
  response: Response;
};

function fail(message: string): never {
  console.error(`FAIL: ${message}`);
  process.exit(1);
}

async function ok<T>(what: string, call: Promise<Answer<T>>): Promise<Answer<T> & { data: T }> {
  const answer = await call;
  // A failed fetch (no answer at all) comes back as an error without a response.
  if (answer.response === undefined) fail(`${what}: no answer: ${String(answer.error)}`);
  if (answer.error !== undefined || answer.response.status !== 200) {
    fail(`${what}: expected 200, got ${answer.response.status}: ${JSON.stringify(answer.error)}`);
  }
  console.log(`ok  ${what}`);
  return answer;
}

async function refused<T>(what: string, status: number, reason: string, call: Promise<Answer<T>>) {
  const answer = await call;
  if (answer.response === undefined) fail(`${what}: no answer: ${String(answer.error)}`);
  if (answer.response.status !== status || answer.error === undefined) {
    fail(`${what}: expected ${status} with an ErrorBody, got ${answer.response.status}`);
  }
  const error: ErrorBody = answer.error;
  if (error.reason !== reason) {
    fail(`${what}: expected reason ${reason}, got ${error.reason} (${error.message})`);
  }
  console.log(`ok  ${what}: ${status} ${error.code} ${error.reason}`);
  return { error, response: answer.response };
}

// A client whose `auth` callback answers one security scheme of the spec. The SDK asks
// the callback for every scheme an operation lists, and sends each value it gets.
function clientWith(baseUrl: string, scheme: 'ApiKey' | 'Bearer', secret: string): Client {
  const auth = (a: Auth) => {
    if (scheme === 'ApiKey' && a.type === 'apiKey' && a.name === 'x-api-key') return secret;
    if (scheme === 'Bearer' && a.type === 'http' && a.scheme === 'bearer') return secret;
    return undefined;
  };
  return createClient(createConfig<ClientOptions>({ baseUrl, auth }));
}

async function main() {
  const url = process.env.KEYGATE_URL || fail('set KEYGATE_URL, e.g. http://127.0.0.1:3000');
  const suffix = randomBytes(4).toString('hex');

  // 1. Sign up the first user, without credentials. Node's fetch sends no Origin
  //    header, so the answer includes the session token beside the cookie.
  const anonymous = createClient(createConfig<ClientOptions>({ baseUrl: url }));
  const { data: signedUp } = await ok(
    'auth.signUp',
    authSignUp({
      client: anonymous,
      body: {
        name: 'Ada Lovelace',
        email: `ada-${suffix}@example.com`,
        password: randomBytes(18).toString('base64url'),
      },
    }),
  );
  const token = signedUp.token ?? fail('auth.signUp answered no `token` for a client that sent no Origin');
  const org =
    signedUp.session.activeOrganizationId ?? fail('auth.signUp answered a session without activeOrganizationId');

  // 2. The session token as `Authorization: Bearer <token>` (the Bearer scheme).
  const session = clientWith(url, 'Bearer', token);
  const { data: found } = await ok('auth.getSession with the session token', authGetSession({ client: session }));
  if (found === null || found.user.id !== signedUp.user.id) {
    fail("auth.getSession with the session token did not answer the signed-up user's session");
  }
  const { data: key } = await ok(
    'user.createApiKey',
    userCreateApiKey({ client: session, body: { name: 'flow', metadata: { organizationId: org } } }),
  );

  // 3. The API key in `x-api-key` (the ApiKey scheme); and once as `Authorization: Bearer <key>`.
  const keyed = clientWith(url, 'ApiKey', key.key);
  await ok('project.all with x-api-key', projectAll({ client: keyed }));
  await ok('project.all with Authorization: Bearer <key>', projectAll({ client: clientWith(url, 'Bearer', key.key) }));

  // 4. A project comes with its default environment.
  const { data: created } = await ok(
    'project.create',
    projectCreate({ client: keyed, body: { name: `Website ${suffix}` } }),
  );
  const projectId = created.project.projectId;
  const environmentId = created.environment.environmentId;

  // 5. An application in that environment.
  const { data: app } = await ok(
    'application.create',
    applicationCreate({ client: keyed, body: { name: 'api', environmentId } }),
  );

  // 6. project.all lists the project, its environments, and their applications.
  const { data: projects } = await ok('project.all after the changes', projectAll({ client: keyed }));
  const project = projects.find((p) => p.projectId === projectId) ?? fail(`project.all does not list project ${projectId}`);
  const environment = project.environments.find((e) => e.environmentId === environmentId);
  if (environment === undefined || !environment.isDefault) {
    fail(`project.all does not list the default environment ${environmentId} in the project`);
  }
  if (!environment.applications.some((a) => a.applicationId === app.applicationId)) {
    fail(`project.all does not list application ${app.applicationId} in its environment`);
  }
  console.log(`ok  project.all lists project ${projectId} > environment ${environment.name} > application ${app.name}`);

  // 7. A wrong key is refused with 401 and a typed ErrorBody.
  const wrong = clientWith(url, 'ApiKey', `kg_${randomBytes(18).toString('base64url')}`);
  await refused('project.all with a wrong key', 401, 'invalid_api_key', projectAll({ client: wrong }));

  // 8. A key allowed 2 requests a minute: 2 answers with RateLimit headers, then 429.
  const { data: limitedKey } = await ok(
    'user.createApiKey with a rate limit',
    userCreateApiKey({
      client: session,
      body: {
        name: 'limited',
        metadata: { organizationId: org },
        rateLimitEnabled: true,
        rateLimitMax: 2,
        rateLimitTimeWindow: 60_000,
      },
    }),
  );
  const limited = clientWith(url, 'ApiKey', limitedKey.key);
  for (const remaining of [1, 0]) {
    const { response } = await ok(`project.all with the limited key (${remaining} left)`, projectAll({ client: limited }));
    const headers = [response.headers.get('RateLimit-Limit'), response.headers.get('RateLimit-Remaining')];
    if (headers[0] !== '2' || headers[1] !== String(remaining)) {
      fail(`expected RateLimit-Limit 2 and RateLimit-Remaining ${remaining}, got ${JSON.stringify(headers)}`);
    }
  }
  const { response } = await refused(
    'project.all past the rate limit',
    429,
    'rate_limited',
    projectAll({ client: limited }),
  );
  const retryAfter = response.headers.get('Retry-After') ?? '';
  if (!/^\d+$/.test(retryAfter) || Number(retryAfter) < 1) {
    fail(`the 429 answer needs Retry-After in whole seconds >= 1, got ${JSON.stringify(retryAfter)}`);
  }
  console.log(`ok  Retry-After: ${retryAfter}`);

  // 9. Signing out ends the session: get-session then answers null.
  await ok('auth.signOut', authSignOut({ client: session }));
  const { data: after } = await ok('auth.getSession after sign-out', authGetSession({ client: session }));
  if (after !== null) fail('auth.getSession still answers a session after sign-out');

  console.log('typescript client: all checks passed');
}

main().catch((error: unknown) => fail(`unexpected error: ${String(error)}`));
