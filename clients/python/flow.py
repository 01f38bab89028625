"""The keygate API through the client that openapi-python-client generates.

Generate the client beside this file, then run the flow against a keygate server on
which nobody has signed up yet (the flow signs up the owner):

    openapi-python-client generate --path ../../openapi/openapi.json \
        --meta none --output-path keygate_client --overwrite
    KEYGATE_URL=http://127.0.0.1:3000 python flow.py

Every request goes through a generated function, as generated. The program exits 1
with a message on the first answer that differs from what the spec promises.
"""

import os
import secrets
import sys
from typing import NoReturn, TypeVar

import httpx

from keygate_client import AuthenticatedClient, Client, errors
from keygate_client.api.application import application_create
from keygate_client.api.auth import auth_get_session, auth_sign_out, auth_sign_up
from keygate_client.api.project import project_all, project_create
from keygate_client.api.user import user_create_api_key
from keygate_client.models import (
    CreateApiKey,
    CreateApplication,
    CreateProject,
    ErrorBody,
    KeyMetadata,
    SessionAndUser,
    SignUpBody,
)
from keygate_client.types import Response, Unset

T = TypeVar("T")


def fail(message: str) -> NoReturn:
    print(f"FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def ok(response: Response[T | ErrorBody], what: str) -> T:
    """The parsed body of a 200 answer, typed by the generated function."""
    parsed = response.parsed
    if response.status_code != 200 or parsed is None or isinstance(parsed, ErrorBody):
        fail(f"{what}: expected 200, got {response.status_code.value}: {response.content!r}")
    print(f"ok  {what}")
    return parsed


def refused(response: Response[T | ErrorBody], status: int, reason: str, what: str) -> ErrorBody:
    """The typed error body of a refusal, which must carry this status and reason."""
    error = response.parsed
    if response.status_code != status or not isinstance(error, ErrorBody):
        fail(f"{what}: expected {status} with an ErrorBody, got {response.status_code.value}: {response.content!r}")
    if error.reason != reason:
        fail(f"{what}: expected reason {reason!r}, got {error.reason!r} ({error.message})")
    print(f"ok  {what}: {status} {error.code.value} {error.reason}")
    return error


def current_session(client: AuthenticatedClient, what: str) -> SessionAndUser | None:
    """auth.getSession: the session and user, or None for the JSON `null` answer."""
    response = auth_get_session.sync_detailed(client=client)
    if response.status_code != 200 or isinstance(response.parsed, ErrorBody):
        fail(f"{what}: expected 200, got {response.status_code.value}: {response.content!r}")
    print(f"ok  {what}: {'a session' if response.parsed else 'null'}")
    return response.parsed


def api_key_client(url: str, key: str) -> AuthenticatedClient:
    # The spec's ApiKey scheme: the key alone in the `x-api-key` header, no prefix.
    return AuthenticatedClient(
        base_url=url, token=key, prefix="", auth_header_name="x-api-key", raise_on_unexpected_status=True
    )


def main() -> None:
    url = os.environ.get("KEYGATE_URL") or fail("set KEYGATE_URL, e.g. http://127.0.0.1:3000")
    suffix = secrets.token_hex(4)

    # 1. Sign up the first user, without credentials. The request sends no Origin header
    #    (it does not come from a browser), so the answer includes the session token.
    #    raise_on_unexpected_status makes a status the spec does not list an error.
    anonymous = Client(base_url=url, raise_on_unexpected_status=True)
    signed_up = ok(
        auth_sign_up.sync_detailed(
            client=anonymous,
            body=SignUpBody(name="Ada Lovelace", email=f"ada-{suffix}@example.com", password=secrets.token_urlsafe(18)),
        ),
        "auth.signUp",
    )
    if isinstance(signed_up.token, Unset):
        fail("auth.signUp answered no `token` for a client that sent no Origin")
    org = signed_up.session.active_organization_id
    if isinstance(org, Unset):
        fail("auth.signUp answered a session without activeOrganizationId")

    # 2. The session token as `Authorization: Bearer <token>` (the Bearer scheme), which
    #    is what AuthenticatedClient sends by default.
    session = AuthenticatedClient(base_url=url, token=signed_up.token, raise_on_unexpected_status=True)
    found = current_session(session, "auth.getSession with the session token")
    if found is None or found.user.id != signed_up.user.id:
        fail("auth.getSession with the session token did not answer the signed-up user's session")
    key = ok(
        user_create_api_key.sync_detailed(
            client=session, body=CreateApiKey(name="flow", metadata=KeyMetadata(organization_id=org))
        ),
        "user.createApiKey",
    )

    # 3. The API key, in `x-api-key`; and once as `Authorization: Bearer <key>`.
    keyed = api_key_client(url, key.key)
    ok(project_all.sync_detailed(client=keyed), "project.all with x-api-key")
    bearer_key = AuthenticatedClient(base_url=url, token=key.key, raise_on_unexpected_status=True)
    ok(project_all.sync_detailed(client=bearer_key), "project.all with Authorization: Bearer <key>")

    # 4. A project comes with its default environment.
    created = ok(
        project_create.sync_detailed(client=keyed, body=CreateProject(name=f"Website {suffix}")), "project.create"
    )
    project_id = created.project.project_id
    environment_id = created.environment.environment_id

    # 5. An application in that environment.
    app = ok(
        application_create.sync_detailed(
            client=keyed, body=CreateApplication(name="api", environment_id=environment_id)
        ),
        "application.create",
    )

    # 6. project.all lists the project, its environments, and their applications.
    projects = ok(project_all.sync_detailed(client=keyed), "project.all after the changes")
    project = next((p for p in projects if p.project_id == project_id), None)
    if project is None:
        fail(f"project.all does not list project {project_id}")
    environment = next((e for e in project.environments if e.environment_id == environment_id), None)
    if environment is None or not environment.is_default:
        fail(f"project.all does not list the default environment {environment_id} in the project")
    if app.application_id not in [a.application_id for a in environment.applications]:
        fail(f"project.all does not list application {app.application_id} in its environment")
    print(f"ok  project.all lists project {project_id} > environment {environment.name} > application {app.name}")

    # 7. A wrong key is refused with 401 and a typed ErrorBody.
    wrong = api_key_client(url, "kg_" + secrets.token_urlsafe(24))
    refused(project_all.sync_detailed(client=wrong), 401, "invalid_api_key", "project.all with a wrong key")

    # 8. A key allowed 2 requests a minute: 2 answers with RateLimit headers, then 429.
    limited_key = ok(
        user_create_api_key.sync_detailed(
            client=session,
            body=CreateApiKey(
                name="limited",
                metadata=KeyMetadata(organization_id=org),
                rate_limit_enabled=True,
                rate_limit_max=2,
                rate_limit_time_window=60_000,
            ),
        ),
        "user.createApiKey with a rate limit",
    )
    limited = api_key_client(url, limited_key.key)
    for remaining in (1, 0):
        response = project_all.sync_detailed(client=limited)
        ok(response, f"project.all with the limited key ({remaining} left)")
        limit_headers = (response.headers.get("RateLimit-Limit"), response.headers.get("RateLimit-Remaining"))
        if limit_headers != ("2", str(remaining)):
            fail(f"expected RateLimit-Limit 2 and RateLimit-Remaining {remaining}, got {limit_headers}")
    response = project_all.sync_detailed(client=limited)
    refused(response, 429, "rate_limited", "project.all past the rate limit")
    retry_after = response.headers.get("Retry-After", "")
    if not retry_after.isdigit() or int(retry_after) < 1:
        fail(f"the 429 answer needs Retry-After in whole seconds >= 1, got {retry_after!r}")
    print(f"ok  Retry-After: {retry_after}")

    # 9. Signing out ends the session: get-session then answers null.
    ok(auth_sign_out.sync_detailed(client=session), "auth.signOut")
    if current_session(session, "auth.getSession after sign-out") is not None:
        fail("auth.getSession still answers a session after sign-out")

    print("python client: all checks passed")


if __name__ == "__main__":
    try:
        main()
    except errors.UnexpectedStatus as error:
        # A status the spec does not list for the operation.
        fail(f"undocumented status {error.status_code}: {error.content!r}")
    except httpx.HTTPError as error:
        fail(f"no answer from {os.environ.get('KEYGATE_URL')}: {error}")
