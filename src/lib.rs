//! keygate: API keys, sessions and organizations for a self-hosted API, on one SQLite file.

pub mod api;
pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod model;
pub mod server;
pub mod store;
pub mod web;

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use poem::{Endpoint, EndpointExt, IntoEndpoint, Route};

pub use domain::State;

/// What every app of a process shares: the routes (the API, Swagger UI, the spec, the
/// dashboard, none of which holds state) and what the middleware reads from the spec.
/// Building them generates and parses the spec several times (a large part of a second
/// in a debug build), so it is done once; tests build hundreds of apps.
struct Shared {
    routes: Arc<Route>,
    info: Arc<HashMap<String, api::frame::RouteInfo>>,
    bodies: Arc<api::body_check::BodyCheck>,
}

fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| {
        let service = api::service();
        // The middleware reads the generated document; clients get the published one.
        let raw = api::openapi::raw();
        let info = api::routes(&raw);
        let bodies = api::body_check::BodyCheck::from_spec(&raw);
        let published = api::openapi::published_from(&raw);
        let spec = api::openapi::to_json(&published);
        let yaml = api::openapi::to_yaml(&published);
        // Swagger UI embeds the document it is given: give it the published one.
        let swagger = service.swagger_ui_html().replacen(&raw, &spec, 1);
        let routes = Route::new()
            .at("/", web::dashboard())
            .at("/dashboard.js", web::dashboard_js())
            .at("/dashboard.css", web::dashboard_css())
            .at("/favicon.svg", web::favicon())
            .nest("/swagger", web::swagger(swagger))
            .at("/openapi.json", web::text(spec, "application/json"))
            .at("/openapi.yaml", web::text(yaml, "application/yaml"))
            .at("/api/authz/forward-auth", api::authz::forward_auth)
            .at("/api/authz/auth-request", api::authz::auth_request)
            .nest_no_strip(
                "/api",
                service
                    .into_endpoint()
                    .catch_error(|e| async move { api::body_check::unparsed_body(e) }),
            );
        Shared {
            routes: Arc::new(routes),
            info: Arc::new(info),
            bodies: Arc::new(bodies),
        }
    })
}

/// The whole HTTP application for `state`; tests build it in-process.
pub fn app(state: State) -> impl Endpoint<Output = poem::Response> {
    let s = shared();
    Arc::clone(&s.routes)
        .with(api::frame::Frame::new(
            &state.config,
            Arc::clone(&s.info),
            Arc::clone(&s.bodies),
        ))
        .with(api::headers::Headers)
        .data(state)
}
