//! The HTTP API: one file per router, the security extractor, the error mapping, and the
//! middleware around them.

pub mod application;
pub mod audit;
pub mod auth;
pub mod authz;
pub mod body_check;
pub mod domain;
pub mod environment;
pub mod error;
pub mod frame;
pub mod headers;
pub mod health;
pub mod listing;
pub mod openapi;
pub mod organization;
pub mod project;
pub mod raw;
pub mod security;
pub mod text;
pub mod two_factor;
pub mod user;
pub mod views;

use std::collections::HashMap;

use poem_openapi::{OpenApiService, Tags};

/// Swagger UI groups.
#[derive(Tags)]
pub enum ApiTags {
    /// Sign-up, sign-in, sign-out and the current session (cookie-based).
    Auth,
    /// Liveness.
    Health,
    /// Organizations, invitations and member roles.
    Organization,
    /// The caller, its sessions, API keys, and the members of the active organization.
    User,
    /// Projects of the organization.
    Project,
    /// Environments of a project.
    Environment,
    /// Applications of an environment.
    Application,
    /// Hosts and path prefixes of an application, which forward auth guards.
    Domain,
    /// Verifying keys for services that receive them.
    ApiKey,
    /// What happened: the organization's audit log and the caller's own account events.
    Audit,
}

/// The OpenAPI service: every router, with the spec's metadata.
pub fn service() -> OpenApiService<impl poem_openapi::OpenApi, ()> {
    let apis = (
        auth::AuthApi,
        two_factor::TwoFactorApi,
        health::HealthApi,
        organization::OrganizationApi,
        user::UserApi,
        project::ProjectApi,
        environment::EnvironmentApi,
        application::ApplicationApi,
        domain::DomainApi,
        authz::ApiKeyApi,
        audit::AuditApi,
    );
    OpenApiService::new(apis, "keygate", env!("CARGO_PKG_VERSION"))
        .description(
            "A self-hosted API authentication server. Procedures live at \
             `/api/<router>.<procedure>`: queries are GET with query parameters, mutations are \
             POST with a JSON body, in which optional fields are left out (never `null`) \
             and fields the spec does not name are ignored. \
             Authenticate with an API key in the `x-api-key` header or \
             with the session cookie set by sign-in. Every error has the shape \
             `{message, code, reason, issues?}`; 401 covers every failed authentication or \
             authorization, 429 comes with `Retry-After`. Listings answer one page: \
             `limit` (1-100, default 100) and `offset` pick it, in the order the rows were \
             made, and `X-Total-Count` says how many rows there are in all.",
        )
        .server("/")
}

/// The published spec as pretty JSON, exactly as `keygate openapi` prints it.
pub fn spec_json() -> String {
    openapi::json()
}

/// What the middleware needs to know of each path: the methods it answers to (for
/// `Allow` on a 405) and whether its operations need a credential.
pub fn routes(spec: &str) -> HashMap<String, frame::RouteInfo> {
    let parsed: serde_json::Value = serde_json::from_str(spec).unwrap_or_default();
    let mut out = HashMap::new();
    if let Some(paths) = parsed.get("paths").and_then(|p| p.as_object()) {
        for (path, ops) in paths {
            if let Some(ops) = ops.as_object() {
                let methods: Vec<String> = ops.keys().map(|m| m.to_uppercase()).collect();
                let secured = ops.values().any(|op| {
                    op.get("security")
                        .and_then(|s| s.as_array())
                        .is_some_and(|s| !s.is_empty())
                });
                let writes = ops.values().any(|op| {
                    op.get("operationId")
                        .and_then(|id| id.as_str())
                        .is_none_or(crate::domain::policy::writes)
                });
                out.insert(
                    path.clone(),
                    frame::RouteInfo {
                        allow: methods.join(", "),
                        secured,
                        writes,
                    },
                );
            }
        }
    }
    out
}
