//! Shared setup for the project, environment and application tests: resources made through
//! the API, members with access lists, API keys, a stranger's organization, and a dump of
//! the database to show that a refused request changed nothing.

#![allow(dead_code)]

use serde_json::{Value, json};

use crate::helpers::*;

/// An id that no table holds.
pub const MISSING: &str = "nosuchresource000000";

/// Every resource flag a member can hold (all but `canAccessToAPI`).
pub fn resource_flags() -> Value {
    json!({
        "canCreateProjects": true,
        "canDeleteProjects": true,
        "canCreateEnvironments": true,
        "canDeleteEnvironments": true,
        "canCreateServices": true,
        "canDeleteServices": true,
    })
}

/// A project made by `who`: (project id, id of its default environment).
pub async fn project(app: &TestApp, who: &As, name: &str) -> (String, String) {
    let r = app
        .post("/api/project.create", json!({"name": name}), who)
        .await;
    let body = r.assert_ok();
    let p = body["project"]["projectId"].as_str().unwrap().to_owned();
    let e = body["environment"]["environmentId"]
        .as_str()
        .unwrap()
        .to_owned();
    // Later resources are strictly newer.
    app.clock.advance(1);
    (p, e)
}

/// An environment made by `who` in `project`; its id.
pub async fn environment(app: &TestApp, who: &As, project: &str, name: &str) -> String {
    let r = app
        .post(
            "/api/environment.create",
            json!({"projectId": project, "name": name}),
            who,
        )
        .await;
    let id = r.assert_ok()["environmentId"].as_str().unwrap().to_owned();
    app.clock.advance(1);
    id
}

/// An application made by `who` in `environment`; the answer.
pub async fn application(app: &TestApp, who: &As, environment: &str, name: &str) -> Value {
    let r = app
        .post(
            "/api/application.create",
            json!({"name": name, "environmentId": environment}),
            who,
        )
        .await;
    let body = r.assert_ok().clone();
    app.clock.advance(1);
    body
}

/// The `applicationId` of an application answer.
#[track_caller]
pub fn app_id(a: &Value) -> String {
    a["applicationId"]
        .as_str()
        .unwrap_or_else(|| panic!("no applicationId in {a}"))
        .to_owned()
}

/// `user.assignPermissions` by `by` for `user`: `flags` (missing ones false) and lists.
pub async fn grant(
    app: &TestApp,
    by: &As,
    user: &str,
    flags: Value,
    projects: &[&str],
    environments: &[&str],
    applications: &[&str],
) {
    let mut body = no_flags();
    for (k, v) in flags.as_object().unwrap() {
        body[k] = v.clone();
    }
    body["userId"] = json!(user);
    body["accessedProjects"] = json!(projects);
    body["accessedEnvironments"] = json!(environments);
    body["accessedServices"] = json!(applications);
    app.post("/api/user.assignPermissions", body, by)
        .await
        .assert_ok();
}

/// A member of `by`'s organization holding `flags` and the given access lists.
pub async fn member_seeing(
    app: &TestApp,
    by: &As,
    email: &str,
    flags: Value,
    projects: &[&str],
    environments: &[&str],
    applications: &[&str],
) -> Joined {
    let j = app.invite_and_join(by, email, "member").await;
    grant(
        app,
        by,
        &j.user_id,
        flags,
        projects,
        environments,
        applications,
    )
    .await;
    j
}

/// An API key of `who` for `org`, with `scope` when given; the key itself.
pub async fn api_key(app: &TestApp, who: &As, org: &str, scope: Option<Value>) -> String {
    let mut body = json!({"name": "ci", "metadata": {"organizationId": org}});
    if let Some(s) = scope {
        body["scope"] = s;
    }
    let r = app.post("/api/user.createApiKey", body, who).await;
    r.assert_ok()["key"].as_str().unwrap().to_owned()
}

/// A member of `owner`'s organization with API access and these access lists, and both
/// ways it can sign a request: its session and an API key of its own.
pub async fn member_by_session_and_key(
    app: &TestApp,
    owner: &As,
    projects: &[&str],
    environments: &[&str],
    applications: &[&str],
) -> [As; 2] {
    let m = member_seeing(
        app,
        owner,
        "lists@example.com",
        json!({"canAccessToAPI": true}),
        projects,
        environments,
        applications,
    )
    .await;
    let key = api_key(app, &m.who, &app.first_org(), None).await;
    [m.who, As::Key(key)]
}

/// The access lists `user.getPermissions` answers `who`, sorted: projects, environments,
/// applications.
pub async fn lists_seen(app: &TestApp, who: &As) -> [Vec<String>; 3] {
    let r = app.get("/api/user.getPermissions", &[], who).await;
    let body = r.assert_ok();
    [
        "accessedProjects",
        "accessedEnvironments",
        "accessedServices",
    ]
    .map(|f| {
        let mut ids: Vec<String> = body[f]
            .as_array()
            .unwrap_or_else(|| panic!("no {f} in {body}"))
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect();
        ids.sort();
        ids
    })
}

/// `ids`, sorted.
pub fn sorted(ids: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = ids.iter().map(|s| (*s).to_owned()).collect();
    v.sort();
    v
}

/// The owner of another organization, who belongs to no other.
pub struct Stranger {
    /// Its session, acting in its own organization.
    pub who: As,
    /// An API key for its organization.
    pub key: As,
    pub org: String,
    pub user_id: String,
}

/// `email` joins `owner`'s organization, creates one of its own, moves there, and is
/// removed from `owner`'s: a stranger with an organization of its own (sign-up needs an
/// invitation after the first user, so this is the only way in).
pub async fn stranger(app: &TestApp, owner: &As, email: &str) -> Stranger {
    let j = app.invite_and_join(owner, email, "member").await;
    let r = app
        .post(
            "/api/organization.create",
            json!({"name": "Their Organization"}),
            &j.who,
        )
        .await;
    let org = id_of(r.assert_ok());
    app.post(
        "/api/organization.setActive",
        json!({"organizationId": org}),
        &j.who,
    )
    .await
    .assert_ok();
    app.post("/api/user.remove", json!({"userId": j.user_id}), owner)
        .await
        .assert_ok();
    let key = api_key(app, &j.who, &org, None).await;
    Stranger {
        who: j.who,
        key: As::Key(key),
        org,
        user_id: j.user_id,
    }
}

/// `project.all` as `who`, which must answer.
pub async fn all_projects(app: &TestApp, who: &As) -> Vec<Value> {
    let r = app.get("/api/project.all", &[], who).await;
    r.assert_ok().as_array().expect("a list").clone()
}

/// The project names of a listing, in order.
pub fn project_names(list: &[Value]) -> Vec<String> {
    list.iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect()
}

/// A listing reduced to names: `project/environment/application` for every application
/// and `project/environment` for every environment, in order.
pub fn outline(list: &[Value]) -> Vec<String> {
    let mut out = Vec::new();
    for p in list {
        let pn = p["name"].as_str().unwrap();
        out.push(pn.to_owned());
        for e in p["environments"].as_array().unwrap() {
            let en = e["name"].as_str().unwrap();
            out.push(format!("{pn}/{en}"));
            for a in e["applications"].as_array().unwrap() {
                out.push(format!("{pn}/{en}/{}", a["name"].as_str().unwrap()));
            }
        }
    }
    out
}

/// The names in the `items` of a search answer, in order.
pub fn item_names(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items in {page}"))
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect()
}

/// How many rows of `table` have `column = value`.
pub fn rows(app: &TestApp, table: &str, column: &str, value: &str) -> i64 {
    app.count_where(
        &format!("SELECT count(*) FROM {table} WHERE {column} = ?1"),
        &[&value],
    )
}

/// Every row of every table, as text, sorted: equal dumps mean nothing was written.
pub fn dump(app: &TestApp) -> Vec<String> {
    app.state
        .db
        .read(|c| {
            let tables: Vec<String> = c
                .prepare(
                    "SELECT name FROM sqlite_master WHERE type = 'table'
                     AND name NOT LIKE 'sqlite_%' ORDER BY name",
                )?
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            let mut out = Vec::new();
            for t in tables {
                let mut st = c.prepare(&format!("SELECT * FROM {t}"))?;
                let n = st.column_count();
                let mut q = st.query([])?;
                while let Some(row) = q.next()? {
                    let mut line = format!("{t}:");
                    for i in 0..n {
                        line.push_str(&format!(" {:?}", row.get_ref(i)?));
                    }
                    out.push(line);
                }
            }
            out.sort();
            Ok(out)
        })
        .unwrap()
}
