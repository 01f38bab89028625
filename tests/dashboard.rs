//! The dashboard: `/` serves a self-contained page with strict security headers, every file
//! it references is served from the binary with the right type, and nothing points
//! outside the server.

use std::sync::Arc;

use keygate::clock::ManualClock;
use keygate::config::Config;
use keygate::db::{Db, Ownership};
use keygate::{State, app};
use poem::EndpointExt;
use poem::Response;
use poem::endpoint::BoxEndpoint;
use poem::test::TestClient;
use serde_json::Value;

struct Page {
    content_type: String,
    headers: poem::http::HeaderMap,
    body: String,
}

struct Dashboard {
    client: TestClient<BoxEndpoint<'static, Response>>,
    _dir: tempfile::TempDir,
}

impl Dashboard {
    fn new() -> Dashboard {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::new(dir.path().join("keygate.db"));
        let db = Db::open(&config.db_path, 4, Ownership::Server).unwrap();
        let state = State::new(db, Arc::new(ManualClock::new(1_795_737_600_000)), config);
        Dashboard {
            client: TestClient::new(app(state).boxed()),
            _dir: dir,
        }
    }

    async fn get(&self, path: &str) -> Page {
        let resp = self.client.get(path).send().await;
        resp.assert_status_is_ok();
        let resp = resp.0;
        let headers = resp.headers().clone();
        let content_type = headers
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let body = resp.into_body().into_string().await.unwrap();
        Page {
            content_type,
            headers,
            body,
        }
    }
}

impl Page {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header"))
            .to_str()
            .unwrap()
    }
}

/// The values of every `name="..."` attribute in `html`.
fn attributes<'a>(html: &'a str, name: &str) -> Vec<&'a str> {
    let needle = format!(" {name}=\"");
    html.match_indices(&needle)
        .map(|(at, _)| {
            let rest = &html[at + needle.len()..];
            &rest[..rest.find('"').unwrap()]
        })
        .collect()
}

/// Every HTML tag named `tag`, from `<` to `>`.
fn tags<'a>(html: &'a str, tag: &str) -> Vec<&'a str> {
    let needle = format!("<{tag} ");
    html.match_indices(&needle)
        .map(|(at, _)| {
            let rest = &html[at..];
            &rest[..=rest.find('>').unwrap()]
        })
        .collect()
}

/// The files the page loads, with the content type each must be served with.
fn assets(html: &str) -> Vec<(String, &'static str)> {
    let mut out = Vec::new();
    for tag in tags(html, "script")
        .into_iter()
        .chain(tags(html, "img"))
        .chain(tags(html, "link"))
    {
        for url in attributes(tag, "src")
            .into_iter()
            .chain(attributes(tag, "href"))
        {
            let ty = match url.rsplit('.').next().unwrap() {
                "js" => "text/javascript; charset=utf-8",
                "css" => "text/css; charset=utf-8",
                "svg" => "image/svg+xml",
                other => panic!("an asset of unexpected type {other:?}: {url}"),
            };
            out.push((url.to_owned(), ty));
        }
    }
    out.sort();
    out.dedup();
    out
}

fn assert_strict_headers(page: &Page, path: &str) {
    let csp = page.header("content-security-policy");
    assert!(
        csp.starts_with("default-src 'self';"),
        "{path}: CSP {csp:?}"
    );
    assert!(
        csp.contains("frame-ancestors 'none'"),
        "{path}: CSP {csp:?}"
    );
    for loose in [
        "unsafe-inline",
        "unsafe-eval",
        "*",
        "http:",
        "https:",
        "data:",
    ] {
        assert!(!csp.contains(loose), "{path}: CSP allows {loose}: {csp:?}");
    }
    assert_eq!(page.header("x-content-type-options"), "nosniff", "{path}");
    assert_eq!(page.header("referrer-policy"), "same-origin", "{path}");
    assert_eq!(page.header("x-frame-options"), "DENY", "{path}");
}

/// No URL that leaves the server: no scheme, no protocol-relative `//host`.
fn assert_no_external_urls(path: &str, text: &str) {
    // An SVG file must name its XML namespace, and a script that builds SVG elements
    // passes it to `createElementNS`; that is an identifier, never fetched.
    let text = text
        .replace("xmlns=\"http://www.w3.org/2000/svg\"", "")
        .replace("'http://www.w3.org/2000/svg'", "")
        // The proxy snippets' placeholder for the user's own service: shown, never fetched.
        .replace("const UPSTREAM = 'http://127.0.0.1:8080';", "");
    for external in [
        "http://", "https://", "ftp://", "ws://", "wss://", "@import",
    ] {
        assert!(!text.contains(external), "{path} contains {external:?}");
    }
    for attr in ["src", "href", "action"] {
        for url in attributes(&text, attr) {
            assert!(
                url.starts_with('/') && !url.starts_with("//") || url.starts_with('#'),
                "{path}: {attr}={url:?} is not a path on this server"
            );
        }
    }
    for (at, _) in text.match_indices("url(") {
        let target = text[at + 4..].trim_start_matches(['\'', '"']);
        assert!(
            target.starts_with('/') && !target.starts_with("//"),
            "{path}: url({target:.40}...) leaves the server"
        );
    }
}

#[tokio::test]
async fn the_page_is_served_with_strict_security_headers() {
    let d = Dashboard::new();
    let page = d.get("/").await;

    assert_eq!(page.content_type, "text/html; charset=utf-8");
    assert!(
        page.body.starts_with("<!doctype html>"),
        "{:.80}",
        page.body
    );
    assert!(page.body.contains("<title>keygate</title>"));
    assert_strict_headers(&page, "/");
}

#[tokio::test]
async fn every_referenced_asset_is_served_with_its_type() {
    let d = Dashboard::new();
    let page = d.get("/").await;
    let assets = assets(&page.body);
    let paths: Vec<&str> = assets.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(paths, ["/dashboard.css", "/dashboard.js", "/favicon.svg"]);

    for (path, content_type) in &assets {
        let asset = d.get(path).await;
        assert_eq!(&asset.content_type, content_type, "{path}");
        assert!(!asset.body.is_empty(), "{path} is empty");
        assert_strict_headers(&asset, path);
    }
}

#[tokio::test]
async fn nothing_points_outside_the_server() {
    let d = Dashboard::new();
    let page = d.get("/").await;
    assert_no_external_urls("/", &page.body);
    for (path, _) in assets(&page.body) {
        assert_no_external_urls(&path, &d.get(&path).await.body);
    }
    // The page's own links lead somewhere.
    for link in attributes(&page.body, "href") {
        if !link.starts_with('#') {
            d.get(link).await;
        }
    }
}

#[tokio::test]
async fn the_page_has_no_inline_script_or_style() {
    let d = Dashboard::new();
    let html = d.get("/").await.body;

    let scripts = tags(&html, "script");
    assert!(!scripts.is_empty());
    for tag in scripts {
        assert!(tag.contains(" src=\"/"), "inline script: {tag}");
    }
    assert!(!html.contains("<script>"), "inline script");
    assert!(!html.contains("<style"), "inline style sheet");
    assert!(!html.contains(" style=\""), "inline style attribute");
    for handler in [
        " onclick=",
        " onload=",
        " onsubmit=",
        " onerror=",
        "javascript:",
    ] {
        assert!(!html.contains(handler), "inline handler {handler}");
    }
}

#[tokio::test]
async fn the_script_calls_only_documented_operations_and_stores_nothing() {
    let d = Dashboard::new();
    let js = d.get("/dashboard.js").await.body;
    let spec: Value = serde_json::from_str(&keygate::api::spec_json()).unwrap();
    let documented = spec["paths"].as_object().unwrap();

    let mut called = Vec::new();
    for (at, _) in js.match_indices("'/api/") {
        let rest = &js[at + 1..];
        called.push(&rest[..rest.find('\'').unwrap()]);
    }
    for path in [
        "/api/auth/get-session",
        "/api/auth/sign-in/email",
        "/api/auth/sign-up/email",
        "/api/auth/sign-out",
        "/api/user.get",
        // The newest keys, when there are more than `user.get` holds.
        "/api/user.listApiKeys",
        "/api/user.createApiKey",
        "/api/user.updateApiKey",
        "/api/user.rotateApiKey",
        "/api/user.deleteApiKey",
        "/api/user.listSessions",
        "/api/user.revokeSession",
        "/api/organization.all",
        "/api/organization.active",
        "/api/organization.setActive",
        "/api/project.all",
        // The code step of a sign-in.
        "/api/auth/two-factor/verify-totp",
        "/api/auth/two-factor/verify-backup-code",
        // Two-factor on the account.
        "/api/auth/two-factor/enable",
        "/api/auth/two-factor/generate-backup-codes",
        "/api/auth/two-factor/disable",
        // An owner requires two-factor of the organization.
        "/api/organization.update",
        // Members, their reset links, and setting a password with one.
        "/api/user.all",
        "/api/user.createPasswordReset",
        "/api/auth/reset-password",
        // Activity: the organization's audit log, and the caller's own events.
        "/api/audit.all",
        "/api/audit.account",
        // A key's chart.
        "/api/user.apiKeyUsage",
        // What the caller may do in the active organization.
        "/api/user.getPermissions",
        // Organizations of their own: created, renamed (`organization.update`), deleted.
        "/api/organization.create",
        "/api/organization.delete",
        // A member's role, flags and access lists, and its removal.
        "/api/user.one",
        "/api/organization.updateMemberRole",
        "/api/user.assignPermissions",
        "/api/user.remove",
        // Invitations, and accepting one from its link.
        "/api/organization.inviteMember",
        "/api/organization.allInvitations",
        "/api/organization.removeInvitation",
        "/api/organization.acceptInvitation",
        // The project tree and each application's domains.
        "/api/project.create",
        "/api/project.update",
        "/api/project.remove",
        "/api/environment.create",
        "/api/environment.update",
        "/api/environment.remove",
        "/api/application.one",
        "/api/application.create",
        "/api/application.update",
        "/api/application.delete",
        "/api/domain.byApplicationId",
        "/api/domain.create",
        "/api/domain.update",
        "/api/domain.delete",
    ] {
        assert!(called.contains(&path), "the dashboard does not call {path}");
    }
    for path in called {
        assert!(
            documented.contains_key(path),
            "the dashboard calls {path}, which the API does not have"
        );
    }

    // Keys and tokens live only in the page while shown; the session cookie is HttpOnly.
    for storage in [
        "localStorage",
        "sessionStorage",
        "indexedDB",
        "document.cookie",
    ] {
        assert!(!js.contains(storage), "the script uses {storage}");
    }
    assert!(
        !js.contains("innerHTML"),
        "the script builds HTML from text"
    );
}

/// The `<input>` whose `id` is `id`.
fn input<'a>(html: &'a str, id: &str) -> &'a str {
    let needle = format!(" id=\"{id}\"");
    tags(html, "input")
        .into_iter()
        .find(|tag| tag.contains(&needle))
        .unwrap_or_else(|| panic!("no input #{id}"))
}

/// A `<label for=id>` exists for every field the test names.
fn assert_labelled(html: &str, id: &str) {
    assert!(
        html.contains(&format!("<label for=\"{id}\"")),
        "#{id} has no label"
    );
}

#[tokio::test]
async fn every_field_of_the_page_has_a_label() {
    let d = Dashboard::new();
    let html = d.get("/").await.body;
    let mut fields = 0;
    for tag in ["input", "select", "textarea"] {
        for field in tags(&html, tag) {
            let id = attributes(field, "id");
            assert!(
                !id.is_empty() || field.contains(" aria-label=\""),
                "a field with no id or aria-label: {field}"
            );
            if let Some(id) = id.first() {
                assert_labelled(&html, id);
            }
            fields += 1;
        }
    }
    // The page's own fields, not counting the dialogs and trees the script builds.
    assert!(fields > 30, "only {fields} fields found");

    // The fields the script builds: a label for each, named as the API's field.
    let js = d.get("/dashboard.js").await.body;
    assert!(js.contains("h('label', { for: id }, f.label"));
    assert!(js.contains("h('label', { for: `perm-${flag}` }"));
    assert!(js.contains("h('label', { for: `access-${id}` }, label)"));
    assert!(js.contains("h('label', { for: `snippet-proxy-${appId}` }"));
    assert!(js.contains("h('label', { for: `snippet-${appId}`"));
}

#[tokio::test]
async fn the_organization_section_invites_manages_members_and_holds_the_project_tree() {
    let d = Dashboard::new();
    let html = d.get("/").await.body;
    for (id, name) in [
        ("invite-email", "email"),
        ("project-name", "name"),
        ("project-description", "description"),
    ] {
        let field = input(&html, id);
        assert!(field.contains(&format!(" name=\"{name}\"")), "{field}");
        assert_labelled(&html, id);
    }
    for id in [
        "member-editor",
        "member-role-form",
        "member-perms-form",
        "member-access",
        "member-remove",
        "invitations-table",
        "projects-rights",
        "edit-dialog",
    ] {
        assert!(html.contains(&format!(" id=\"{id}\"")), "no #{id}");
    }
    let js = d.get("/dashboard.js").await.body;
    // The invitation link carries its token in the fragment, which no request sends.
    assert!(js.contains("#invite=${encodeURIComponent(token)}"));
    // Every proxy of deploy/ has its snippet.
    for proxy in ["traefik: {", "caddy: {", "nginx: {"] {
        assert!(js.contains(proxy), "no {proxy} snippet");
    }
}

#[tokio::test]
async fn the_code_step_asks_for_a_one_time_code_and_offers_to_trust_the_browser() {
    let d = Dashboard::new();
    let html = d.get("/").await.body;

    let code = input(&html, "tf-code");
    assert!(code.contains(" autocomplete=\"one-time-code\""), "{code}");
    assert!(code.contains(" inputmode=\"numeric\""), "{code}");
    assert_labelled(&html, "tf-code");
    assert!(input(&html, "tf-trust").contains(" type=\"checkbox\""));
    assert_labelled(&html, "tf-trust");
    assert!(html.contains("Trust this device for 30 days"));
    assert!(html.contains(">Use a backup code instead</button>"));
}

#[tokio::test]
async fn setting_two_factor_up_asks_for_the_password_in_the_page_and_the_first_code() {
    let d = Dashboard::new();
    let html = d.get("/").await.body;
    let js = d.get("/dashboard.js").await.body;

    assert!(input(&html, "tf-password").contains(" type=\"password\""));
    assert_labelled(&html, "tf-password");
    let first = input(&html, "tf-first-code");
    assert!(first.contains(" autocomplete=\"one-time-code\""), "{first}");
    assert_labelled(&html, "tf-first-code");
    for text in [
        "Set up two-factor",
        "Regenerate backup codes",
        "Turn off two-factor",
    ] {
        assert!(
            html.contains(&format!(">{text}</button>")),
            "no button {text:?}"
        );
    }
    // No prompt() for the password; the QR code is parsed as SVG, not HTML.
    assert!(!js.contains("prompt("), "the script uses a browser prompt");
    assert!(
        js.contains("'image/svg+xml'"),
        "the QR code is not parsed as SVG"
    );
}

#[tokio::test]
async fn an_owner_can_require_two_factor_and_a_member_is_told_when_it_must_turn_it_on() {
    let d = Dashboard::new();
    let html = d.get("/").await.body;
    let js = d.get("/dashboard.js").await.body;

    assert!(input(&html, "org-require-2fa").contains(" type=\"checkbox\""));
    assert_labelled(&html, "org-require-2fa");
    assert!(html.contains("Require two-factor for members"));
    assert!(html.contains("This organization requires two-factor sign-in"));
    // The refusal that asks for two-factor does not count as being signed out.
    assert!(js.contains("'two_factor_required'"));
    let gone = js
        .lines()
        .find(|l| l.contains("const SESSION_GONE"))
        .expect("no SESSION_GONE");
    assert!(!gone.contains("two_factor_required"), "{gone}");
}

#[tokio::test]
async fn a_reset_link_opens_a_form_for_the_new_password_twice() {
    let d = Dashboard::new();
    let html = d.get("/").await.body;
    let js = d.get("/dashboard.js").await.body;

    for id in ["reset-password", "reset-password-again"] {
        let field = input(&html, id);
        assert!(field.contains(" type=\"password\""), "{field}");
        assert!(field.contains(" autocomplete=\"new-password\""), "{field}");
        assert_labelled(&html, id);
    }
    assert!(html.contains("Set a new password"));
    assert!(
        js.contains("#reset="),
        "the script does not read the reset link"
    );
    assert!(html.contains(">Reset link<") || js.contains("'Reset link'"));
}

#[tokio::test]
async fn the_activity_section_filters_the_audit_log_and_loads_more() {
    let d = Dashboard::new();
    let html = d.get("/").await.body;
    let js = d.get("/dashboard.js").await.body;

    assert!(html.contains("<section id=\"activity\""));
    assert!(html.contains("<h2 id=\"activity-title\" tabindex=\"-1\">Activity</h2>"));
    // The page's section links lead to it.
    assert!(html.contains("<a href=\"#/activity\" data-nav=\"activity\">Activity</a>"));
    assert!(html.contains("<section id=\"activity\" class=\"card\" data-route=\"activity\""));
    for (id, name) in [
        ("activity-action", "action"),
        ("activity-actor", "actorId"),
        ("activity-resource-type", "resourceType"),
        ("activity-resource-id", "resourceId"),
        ("activity-from", "from"),
        ("activity-to", "to"),
    ] {
        // Named as the query parameter, so a 400's issue marks its field.
        let field = input(&html, id);
        assert!(field.contains(&format!(" name=\"{name}\"")), "{field}");
        assert_labelled(&html, id);
    }
    for id in ["activity-from", "activity-to"] {
        assert!(input(&html, id).contains(" type=\"date\""), "#{id}");
    }
    for view in ["organization", "account"] {
        assert!(
            html.contains(&format!(" data-view=\"{view}\" aria-pressed=")),
            "no {view} view"
        );
    }
    assert!(html.contains(">Organization</button>") && html.contains(">My account</button>"));
    assert!(html.contains(">Load more</button>"));
    // Pages follow `nextCursor`; a refused organization log offers the account's.
    assert!(js.contains("page.nextCursor") && js.contains("params.cursor"));
    assert!(js.contains("'permission_denied'"));
}

#[tokio::test]
async fn each_key_opens_a_usage_chart_drawn_as_svg_with_classes_only() {
    let d = Dashboard::new();
    let html = d.get("/").await.body;
    let js = d.get("/dashboard.js").await.body;
    let css = d.get("/dashboard.css").await.body;

    assert!(
        js.contains("'data-action': 'usage'"),
        "no usage button per key"
    );
    for id in ["usage-step", "usage-span"] {
        assert_labelled(&html, id);
    }
    assert!(html.contains("<option value=\"hour\">hour</option>"));
    assert!(html.contains("<option value=\"30\">the last 30 days</option>"));
    assert!(
        html.contains("UTC"),
        "the chart does not say its days are UTC"
    );
    assert!(html.contains("id=\"usage-legend\""));
    // SVG elements built by the script, each outcome coloured by a class of the style
    // sheet: the policy refuses style attributes.
    assert!(js.contains("document.createElementNS(SVG_NS"));
    assert!(js.contains("role: 'img'") && js.contains("'aria-labelledby': 'usage-svg-title'"));
    for (class, colour) in [
        ("s-ok", "--c-ok"),
        ("s-rate", "--c-rate"),
        ("s-usage", "--c-usage"),
        ("s-refused", "--c-refused"),
    ] {
        assert!(js.contains(&format!("cls: '{class}'")), "{class}");
        assert!(
            css.contains(&format!(".{class} {{ fill: var({colour});")),
            "{class} has no fill"
        );
    }
    for style in [".style", "'style'", "cssText"] {
        assert!(!js.contains(style), "the script sets a style: {style}");
    }
}

#[tokio::test]
async fn an_unused_key_is_marked_in_words() {
    let d = Dashboard::new();
    let js = d.get("/dashboard.js").await.body;
    assert!(js.contains("if (!k.unused) return null;"));
    // The badge names the server's `--unused-key-days`, as `user.get` gives it.
    assert!(js.contains("unusedDays = me.unusedKeyDays"));
    assert!(js.contains("`Unused ${unusedDays}+ days`"));
}
