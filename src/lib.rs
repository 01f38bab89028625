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

use poem::{Endpoint, EndpointExt, IntoEndpoint, Route};

pub use domain::State;

/// The whole HTTP application for `state`; tests build it in-process.
pub fn app(state: State) -> impl Endpoint<Output = poem::Response> {
    let service = api::service();
    let spec = service.spec();
    let routes = api::routes(&spec);
    let bodies = api::body_check::BodyCheck::from_spec(&spec);
    let yaml = service.spec_yaml();
    Route::new()
        .at("/", web::dashboard())
        .at("/dashboard.js", web::dashboard_js())
        .at("/dashboard.css", web::dashboard_css())
        .at("/favicon.svg", web::favicon())
        .nest("/swagger", service.swagger_ui())
        .at("/openapi.json", web::text(spec, "application/json"))
        .at("/openapi.yaml", web::text(yaml, "application/yaml"))
        .nest_no_strip(
            "/api",
            service
                .into_endpoint()
                .catch_error(|e| async move { api::body_check::unparsed_body(e) }),
        )
        .with(api::frame::Frame::new(&state.config, routes, bodies))
        .with(api::headers::Headers)
        .data(state)
}
