//! The published spec: poem-openapi's document, finished in this one place.
//!
//! poem-openapi writes OpenAPI 3.0 and wraps every described `$ref` in `allOf`, which
//! generators turn into copies of the model (or refuse, for an enum). It cannot say that
//! a string is a time, that a security requirement is optional, or which of the error
//! statuses an operation can answer. `publish` rewrites the generated document into the
//! one keygate serves, prints and commits:
//!
//! - OpenAPI 3.1, where a `$ref` may have siblings: `allOf: [{$ref}, {description}]`
//!   becomes `{$ref, description}`, and `nullable` becomes a `null` alternative.
//! - `format: date-time` on every time (`createdAt`, `from`, ...).
//! - The security of each operation: the three ways to send a credential where the
//!   middleware checks one, the session alone where only a session will do, optional
//!   where none is needed, and none on the open ones.
//! - Each operation's error statuses by what it does: a GET never answers 409, 413 or
//!   415; an operation without input never 400.
//! - Examples on every request field, so that Swagger UI's prefilled bodies are valid
//!   requests; summaries without Markdown.
//!
//! The middleware reads the generated document (`raw`), not this one: what it enforces
//! does not depend on how the spec is published.

use serde_json::{Map, Value, json};

use super::security::{API_KEY_SCHEME, COOKIE_SCHEME};
use crate::auth::cookie;

/// The scheme of `Authorization: Bearer`: an API key or a session token.
pub const BEARER_SCHEME: &str = "Bearer";
/// The cookie of a sign-in's password step, waiting for its two-factor code.
pub const CHALLENGE_SCHEME: &str = "TwoFactorCookie";

/// poem-openapi's document, as generated from the code.
pub fn raw() -> String {
    super::service().spec()
}

/// The published spec as pretty JSON.
pub fn json() -> String {
    to_json(&published())
}

/// The published spec as YAML.
pub fn yaml() -> String {
    to_yaml(&published())
}

/// `doc` as pretty JSON, its top-level fields in the usual order.
pub fn to_json(doc: &Value) -> String {
    serde_json::to_string_pretty(&Ordered(doc)).unwrap_or_default()
}

/// `doc` as YAML, its top-level fields in the usual order.
pub fn to_yaml(doc: &Value) -> String {
    serde_yaml::to_string(&Ordered(doc)).unwrap_or_default()
}

/// A document whose top-level fields come in the order readers expect (`openapi` first,
/// `components` last) rather than alphabetically, as `serde_json`'s map keeps them.
struct Ordered<'a>(&'a Value);

const TOP_LEVEL: [&str; 7] = [
    "openapi",
    "info",
    "servers",
    "tags",
    "security",
    "paths",
    "components",
];

impl serde::Serialize for Ordered<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let Some(m) = self.0.as_object() else {
            return self.0.serialize(s);
        };
        let mut out = s.serialize_map(Some(m.len()))?;
        for k in TOP_LEVEL {
            if let Some(v) = m.get(k) {
                out.serialize_entry(k, v)?;
            }
        }
        for (k, v) in m.iter().filter(|(k, _)| !TOP_LEVEL.contains(&k.as_str())) {
            out.serialize_entry(k, v)?;
        }
        out.end()
    }
}

/// The published spec.
pub fn published() -> Value {
    published_from(&raw())
}

/// The published spec of the generated document `raw`.
pub fn published_from(raw: &str) -> Value {
    let mut doc: Value = serde_json::from_str(raw).unwrap_or_default();
    publish(&mut doc);
    doc
}

/// How an operation takes its credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Security {
    /// None: anyone may call it.
    Open,
    /// A session if there is one (`null` or a no-op without).
    OptionalSession,
    /// A session, never an API key.
    Session,
    /// The password step's cookie of a sign-in, or a session.
    ChallengeOrSession,
    /// An API key, or a session: what the middleware checks.
    Any,
}

/// The security of operations whose handlers read the credential themselves.
fn security_of(id: &str, generated: bool) -> Security {
    match id {
        "auth.getSession" | "auth.signOut" => Security::OptionalSession,
        "twoFactor.enable"
        | "twoFactor.getTotpUri"
        | "twoFactor.generateBackupCodes"
        | "twoFactor.disable" => Security::Session,
        "twoFactor.verifyTotp" | "twoFactor.verifyBackupCode" => Security::ChallengeOrSession,
        _ if generated => Security::Any,
        _ => Security::Open,
    }
}

impl Security {
    fn requirement(self) -> Value {
        let one = |s: &str| json!({ s: [] });
        match self {
            Security::Open => json!([]),
            Security::OptionalSession => {
                json!([one(COOKIE_SCHEME), one(BEARER_SCHEME), {}])
            }
            Security::Session => json!([one(COOKIE_SCHEME), one(BEARER_SCHEME)]),
            Security::ChallengeOrSession => json!([
                one(CHALLENGE_SCHEME),
                one(COOKIE_SCHEME),
                one(BEARER_SCHEME)
            ]),
            Security::Any => json!([one(API_KEY_SCHEME), one(BEARER_SCHEME), one(COOKIE_SCHEME)]),
        }
    }

    /// Whether a session cookie may carry the credential (then a change needs Origin).
    fn cookie(self) -> bool {
        self != Security::Open
    }
}

/// Operations open to anyone that still refuse with 401 or 429: sign-in's wrong
/// password and its attempt budgets.
const OPEN_BUT_REFUSING: &[&str] = &["auth.signIn", SIGN_UP];

/// Sign-up refuses an invitation for another email (401) and one that does not exist
/// (404), and limits its attempts like sign-in.
const SIGN_UP: &str = "auth.signUp";

/// Operations that name an id only inside a nested object.
const NESTED_IDS: &[&str] = &[SIGN_UP, "user.createApiKey"];

/// Open operations that check a browser's Origin (no login CSRF).
const LOGIN_ORIGIN: &[&str] = &["auth.signUp", "auth.signIn", "auth.resetPassword"];

/// What an operation is, for the statuses it can answer.
struct Shape<'a> {
    id: &'a str,
    post: bool,
    body: bool,
    input: bool,
    ids: bool,
    security: Security,
}

impl Shape<'_> {
    fn answers(&self, status: u16) -> bool {
        let guarded = !matches!(self.security, Security::Open | Security::OptionalSession);
        let refusing = guarded || OPEN_BUT_REFUSING.contains(&self.id);
        match status {
            200 | 500 => true,
            400 => self.input,
            401 => refusing,
            // A cookie-borne change from another origin; sign-up and sign-in refuse a
            // browser's foreign Origin even without a session.
            403 => self.post && (self.security.cookie() || LOGIN_ORIGIN.contains(&self.id)),
            404 => self.ids,
            // A body that stalls, or that does not fit.
            408 | 413 => self.post,
            // Any write can meet a concurrent change of what it depends on.
            409 => self.post,
            415 => self.body,
            429 => refusing,
            // Too many bodies held at once.
            503 => self.post,
            // Any request may write: a session's extension, a key's quota lease.
            507 => true,
            _ => false,
        }
    }
}

/// Finishes the generated document in place; see the module's documentation.
pub fn publish(doc: &mut Value) {
    doc["openapi"] = json!("3.1.0");
    if let Some(info) = doc.get_mut("info").and_then(Value::as_object_mut) {
        info.insert(
            "license".into(),
            json!({"name": "MIT", "identifier": "MIT"}),
        );
    }
    for part in ["/components/schemas", "/paths"] {
        if let Some(v) = doc.pointer_mut(part) {
            finish_schemas(v);
        }
    }
    let bodies: Vec<(String, String)> = doc["paths"]
        .as_object()
        .into_iter()
        .flat_map(|paths| paths.values())
        .filter_map(Value::as_object)
        .flat_map(|ops| ops.values())
        .filter_map(|op| {
            let id = op["operationId"].as_str()?;
            let name = body_schema_name(op)?;
            Some((name.to_owned(), id.to_owned()))
        })
        .collect();
    if let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    {
        for (name, op) in &bodies {
            put_examples(schemas, name, op, 0);
        }
    }
    let schemas = doc
        .pointer("/components/schemas")
        .cloned()
        .unwrap_or_default();
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for ops in paths.values_mut().filter_map(Value::as_object_mut) {
            for (method, op) in ops.iter_mut() {
                finish_operation(method, op, &schemas);
            }
        }
    }
    if let Some(schemes) = doc
        .pointer_mut("/components/securitySchemes")
        .and_then(Value::as_object_mut)
    {
        security_schemes(schemes);
    }
}

/// Rewrites every schema below `v` for OpenAPI 3.1.
fn finish_schemas(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (name, child) in m.iter_mut() {
                finish_schemas(child);
                if let Some(props) = child.as_object_mut()
                    && props.get("type").is_some_and(|t| t == "string")
                    && is_time(name)
                {
                    props.insert("format".into(), json!("date-time"));
                }
            }
            unwrap_all_of(m);
            nullable(m);
            if let Some(example) = m.remove("example") {
                m.insert("examples".into(), json!([example]));
            }
        }
        Value::Array(a) => a.iter_mut().for_each(finish_schemas),
        _ => {}
    }
}

/// Whether a string property of this name holds an RFC 3339 time.
fn is_time(name: &str) -> bool {
    name.ends_with("At") || matches!(name, "at" | "from" | "to" | "hour")
}

/// `allOf: [{$ref}, {description}...]` as `{$ref, description...}`: a described
/// reference, which 3.1 allows.
fn unwrap_all_of(m: &mut Map<String, Value>) {
    let Some(Value::Array(parts)) = m.get("allOf") else {
        return;
    };
    let refs: Vec<&Value> = parts.iter().filter(|p| p.get("$ref").is_some()).collect();
    let only_notes = parts.iter().all(|p| {
        p.get("$ref").is_some()
            || p.as_object().is_some_and(|o| {
                o.keys()
                    .all(|k| matches!(k.as_str(), "description" | "default"))
            })
    });
    if refs.len() != 1 || !only_notes {
        return;
    }
    let Some(Value::Array(parts)) = m.remove("allOf") else {
        return;
    };
    for part in parts {
        if let Value::Object(o) = part {
            for (k, v) in o {
                m.entry(k).or_insert(v);
            }
        }
    }
}

/// `nullable: true` as 3.1 says it: `null` among the types, or beside a reference.
fn nullable(m: &mut Map<String, Value>) {
    if m.remove("nullable") != Some(Value::Bool(true)) {
        return;
    }
    if let Some(r) = m.remove("$ref") {
        m.insert("anyOf".into(), json!([{"$ref": r}, {"type": "null"}]));
    } else if let Some(Value::String(t)) = m.get("type").cloned() {
        m.insert("type".into(), json!([t, "null"]));
    } else {
        m.insert("anyOf".into(), json!([{"type": "null"}]));
    }
}

/// The name of the component schema of an operation's JSON body, if it has one.
fn body_schema_name(op: &Value) -> Option<&str> {
    op.pointer("/requestBody/content")
        .and_then(Value::as_object)
        .and_then(|c| c.values().next())
        .and_then(|m| m.pointer("/schema/$ref"))
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix("#/components/schemas/"))
}

/// Puts an example on every property of schema `name`, the body of operation `op`, and
/// of the schemas it refers to.
fn put_examples(schemas: &mut Map<String, Value>, name: &str, op: &str, depth: usize) {
    // A body that takes one field of several: one example of the whole, which Swagger UI
    // prefers to one made of every field.
    if name == "AcceptInvitation"
        && let Some(s) = schemas.get_mut(name)
    {
        s["examples"] = json!([{"invitationId": example(op, "invitationId")}]);
    }
    let mut nested = Vec::new();
    if let Some(props) = schemas
        .get_mut(name)
        .and_then(|s| s.get_mut("properties"))
        .and_then(Value::as_object_mut)
    {
        for (field, schema) in props.iter_mut() {
            if let Some(r) = schema["$ref"].as_str() {
                nested.extend(r.strip_prefix("#/components/schemas/").map(str::to_owned));
            } else if let Some(e) = example(op, field) {
                schema["examples"] = json!([e]);
            }
        }
    }
    if depth < 2 {
        for n in nested {
            put_examples(schemas, &n, op, depth + 1);
        }
    }
}

/// The body made of a schema's examples, as a client filling in every field would send
/// it: the schema's own example, else each property's, nested objects alike.
pub fn sample(schemas: &Value, schema: &Value) -> Option<Value> {
    sample_at(schemas, schema, 0)
}

fn sample_at(schemas: &Value, schema: &Value, depth: usize) -> Option<Value> {
    if depth > 4 {
        return None;
    }
    if let Some(r) = schema["$ref"].as_str() {
        let name = r.strip_prefix("#/components/schemas/")?;
        return sample_at(schemas, &schemas[name], depth + 1);
    }
    if let Some(e) = schema["examples"].get(0) {
        return Some(e.clone());
    }
    let props = schema["properties"].as_object()?;
    let mut out = Map::new();
    for (k, v) in props {
        out.insert(k.clone(), sample_at(schemas, v, depth + 1)?);
    }
    Some(Value::Object(out))
}

fn finish_operation(method: &str, op: &mut Value, schemas: &Value) {
    let id = op["operationId"].as_str().unwrap_or_default().to_owned();
    let body_schema = body_schema_name(op).and_then(|name| schemas.get(name));
    // The body Swagger UI prefills: a valid request.
    if let Some(body) = body_schema.and_then(|b| sample(schemas, b))
        && let Some(Value::Object(content)) = op.pointer_mut("/requestBody/content")
    {
        for media in content.values_mut() {
            media["example"] = body.clone();
        }
    }
    let Some(o) = op.as_object_mut() else {
        return;
    };
    if let Some(Value::String(s)) = o.get_mut("summary") {
        *s = s.replace('`', "");
    }
    let generated = o
        .get("security")
        .and_then(Value::as_array)
        .is_some_and(|s| !s.is_empty());
    let security = security_of(&id, generated);
    o.insert("security".into(), security.requirement());

    let body_fields: Vec<String> = body_schema
        .and_then(|s| s.get("properties"))
        .and_then(Value::as_object)
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default();
    let params = o
        .get_mut("parameters")
        .and_then(Value::as_array_mut)
        .map(std::mem::take)
        .unwrap_or_default();
    let mut param_names = Vec::new();
    let mut finished = Vec::new();
    for mut p in params {
        let name = p["name"].as_str().unwrap_or_default().to_owned();
        if let Some(schema) = p.get_mut("schema") {
            if schema.get("type").is_some_and(|t| t == "string") && is_time(&name) {
                schema["format"] = json!("date-time");
            }
            if let Some(e) = example(&id, &name) {
                p["example"] = e;
            }
        }
        param_names.push(name);
        finished.push(p);
    }
    if !finished.is_empty() {
        o.insert("parameters".into(), Value::Array(finished));
    }
    let shape = Shape {
        id: &id,
        post: method == "post",
        body: body_schema.is_some(),
        input: body_schema.is_some() || !param_names.is_empty(),
        ids: NESTED_IDS.contains(&id.as_str())
            || param_names
                .iter()
                .chain(&body_fields)
                .any(|f| f.ends_with("Id")),
        security,
    };
    if let Some(responses) = o.get_mut("responses").and_then(Value::as_object_mut) {
        if id != "health" {
            responses.retain(|status, _| status.parse().is_ok_and(|s| shape.answers(s)));
        }
        if security == Security::Any
            && let Some(ok) = responses.get_mut("200").and_then(Value::as_object_mut)
        {
            let headers = ok.entry("headers").or_insert_with(|| json!({}));
            for (name, what) in [
                ("RateLimit-Limit", "Requests the key may make per window."),
                ("RateLimit-Remaining", "Requests it has left now."),
                (
                    "RateLimit-Reset",
                    "Seconds until its limit is fully restored.",
                ),
            ] {
                headers[name] = json!({
                    "description": format!("{what} Sent when the key has a rate limit."),
                    "schema": {"type": "integer", "minimum": 0},
                });
            }
        }
    }
}

fn security_schemes(schemes: &mut Map<String, Value>) {
    schemes.insert(
        BEARER_SCHEME.into(),
        json!({
            "type": "http",
            "scheme": "bearer",
            "description": "`Authorization: Bearer <value>`: an API key (as `x-api-key` takes it), \
                or the session token that sign-up, sign-in and the code step answer in `token` \
                to a client that sends no Origin. A session token needs no Origin: no cookie is \
                involved. `x-api-key` wins when both are sent.",
        }),
    );
    schemes.insert(
        CHALLENGE_SCHEME.into(),
        json!({
            "type": "apiKey",
            "in": "cookie",
            "name": cookie::CHALLENGE.name,
            "description": "The cookie sign-in sets when the code step comes next (3 minutes, \
                sent only to `/api/auth/two-factor`; `__Secure-` first over HTTPS). A client \
                that keeps cookies sends it back by itself.",
        }),
    );
    if let Some(Value::Object(c)) = schemes.get_mut(COOKIE_SCHEME) {
        c.insert(
            "description".into(),
            json!(
                "The session cookie set by sign-in (`__Host-keygate.session_token` when served \
                over HTTPS). A cookie-authenticated POST must carry an `Origin` (or `Referer`) \
                of this server or a trusted origin. In Swagger UI this field does nothing, \
                since a page cannot set cookies: sign in on the dashboard of the same server \
                and the browser sends the cookie, and its Origin, with every Execute."
            ),
        );
    }
}

/// The example of input field `name` of operation `op`: valid input, so that a request
/// made of examples alone is refused, if at all, for what it names (an id that does not
/// exist), never for its shape.
pub fn example(op: &str, name: &str) -> Option<Value> {
    let id = |s: &str| Some(json!(s));
    Some(match name {
        "name" if op.ends_with("ApiKey") => json!("deploy"),
        "name" => match op.split('.').next().unwrap_or_default() {
            "auth" | "user" => json!("Ada Lovelace"),
            "organization" => json!("Acme"),
            "project" => json!("Website"),
            "environment" => json!("staging"),
            "application" => json!("api"),
            _ => json!("deploy"),
        },
        "email" => json!("ada@example.com"),
        "password" | "newPassword" | "currentPassword" => json!("correct horse battery"),
        "invitationToken" | "token" => json!("3fK9nQ2xLw7RtY5bVc8sHd1jMp4eZa6u"),
        "callbackURL" => json!("https://app.example.com/"),
        "description" => json!("The public site"),
        "role" => json!("member"),
        "appName" => json!("website-api"),
        "host" => json!("app.example.com"),
        "path" => json!("/"),
        "code" => json!("123456"),
        "trustDevice" | "requireTwoFactor" | "rateLimitEnabled" => json!(false),
        "enabled" => json!(true),
        "prefix" => json!("kg"),
        "expiresIn" => json!(2_592_000),
        "rateLimitTimeWindow" => json!(60_000),
        "rateLimitMax" => json!(600),
        "remaining" => json!(10_000),
        "refillAmount" => json!(10_000),
        "refillInterval" => json!(86_400_000),
        "gracePeriodSeconds" => json!(3600),
        "method" => json!("GET"),
        "key" => json!("kg_notAKeyAtAllButShapedLikeOne0000000000000000"),
        "q" => json!("web"),
        "limit" => json!(100),
        "offset" => json!(0),
        "from" => json!("2026-11-20T00:00:00.000Z"),
        "to" => json!("2026-11-27T00:00:00.000Z"),
        "action" => json!("apikey.create"),
        "resourceType" => json!("apikey"),
        "readOnly" => json!(false),
        n if n.starts_with("can") => json!(false),
        n if n.starts_with("accessed") || n == "projectIds" => json!([]),
        "organizationId" => return id("Xq8v2LmN4pR7tK1wZ9yB3"),
        "projectId" => return id("Pj4kL8mN2qR6tV0xZ3cB7"),
        "environmentId" => return id("En5hJ9kM3pS7uW1yA4dC8"),
        "applicationId" => return id("Ap6gH0jL4nQ8sU2wY5bD9"),
        "domainId" => return id("Dm7fG1hK5mP9rT3vX6aC0"),
        "apiKeyId" => return id("Ky8dF2gJ6kN0qS4uW7zB1"),
        "userId" | "actorId" => return id("Us9cD3fH7jL1oR5tV8yA2"),
        "memberId" => return id("Mb0bC4dG8hK2nP6sU9xZ3"),
        "invitationId" => return id("In1aB5cF9gJ3mO7rT0wY4"),
        "sessionId" => return id("Ss2zA6bE0fH4lN8qS1vX5"),
        "resourceId" => return id("Ky8dF2gJ6kN0qS4uW7zB1"),
        _ => return None,
    })
}
