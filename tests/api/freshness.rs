//! After every change, every answer is the one a server with nothing in memory gives.
//!
//! keygate answers from memory: verified keys and sessions with their principals
//! (membership, role, flags, access lists) and each organization's resources. Every
//! write must drop exactly what it made stale. This test holds every write to that
//! without knowing what any of them touches: for each mutating operation of the spec it
//! starts a server on a world of callers and resources, warms its caches by asking
//! every read operation once as every caller, runs one successful call of the mutation
//! (chosen to change what others hold in memory), and then asks every read operation,
//! with every id of the world and those the mutation answered, as every caller (and as
//! any credential the mutation made) twice: of the server that ran the mutation, and
//! of a fresh server on the database as it now is. Status and JSON body must be equal.
//!
//! Both lists come from the spec: a mutating operation without a scenario here, or a
//! read this test does not ask, fails it until its row is written.
//!
//! How the fresh server gets the data: the running server holds an exclusive lock on its
//! file for as long as it lives (`Ownership::Server`), so a second server cannot open
//! the file itself, and one opened `ReadOnly` would not be a server as it runs after a
//! restart (it never writes, and it would read the very file the other server keeps
//! changing). So the fresh server is a real `Ownership::Server` on a copy made by the
//! running server's own online backup (`Db::backup_to`, what `keygate backup` uses),
//! taken after the mutation, with the same configuration and the clock where the
//! running one's is. The world is built once over HTTP, and every mutation starts on a
//! server of its own over such a copy of it.
//!
//! Nothing is left out of the comparison. Usage counters and last-used times live in
//! memory between flushes: the running server flushes them (`keys::flush_usage`)
//! before the copy is taken, and from then on both servers are asked the same requests
//! in the same order at the same time, so the usage the reads count is the same on
//! both. The clock stands still: no read extends a session, since an extension drops
//! the session's entry from the cache and would hide a stale one.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::helpers::*;

/// One organization of ours with two projects, two members with different lists, keys
/// narrower than their users, pending invitations, and a stranger's organization. Only
/// ids and credentials: they hold for every copy of the database it was built in.
struct World {
    org: String,
    /// Another organization of the owner's.
    side_org: String,
    /// The stranger's organization; the member belongs to it too.
    their_org: String,

    alpha: String,
    alpha_staging: String,
    alpha_app: String,
    beta: String,
    beta_prod: String,
    beta_staging: String,
    beta_app: String,

    /// Every project, environment and application, ours and the stranger's.
    projects: Vec<String>,
    environments: Vec<String>,
    applications: Vec<String>,
    /// alpha-web's domain and beta-api's.
    alpha_domain: String,
    beta_domain: String,
    domains: Vec<String>,

    owner: As,
    owner_session: String,
    owner_key: As,
    owner_key_id: String,
    /// The owner's key for the project beta only.
    scoped_key: As,
    /// A key of the owner's with a quota of 10 uses, which no caller uses.
    metered_key: String,
    admin: Joined,
    /// The admin's read-only key.
    read_only_key: As,
    /// A member with every flag that sees alpha with both its environments but one
    /// application of two, and beta's staging environment and its application.
    member: Joined,
    member_key: As,
    member_key_id: String,
    /// A member without flags that sees the production environment of both projects and
    /// alpha's application there.
    other_member: Joined,
    stranger: Stranger,

    /// The token of a pending invitation into our organization for a new address.
    newcomer_token: String,
    /// A pending invitation into our organization for the stranger.
    stranger_invitation: String,

    /// Two-factor: the owner and the admin have it on; the admin has a sign-in waiting at
    /// the code step (the `Cookie` header of its browser) and its backup codes.
    admin_challenge: As,
    admin_backup_codes: Vec<String>,
    /// The member set two-factor up without confirming it; this code confirms it.
    member_code: String,
    /// The token of a password-reset link for the other member, made by the owner.
    other_member_reset: String,
}

const NEWCOMER: &str = "newcomer@example.com";

impl World {
    async fn build(app: &TestApp) -> World {
        let (owner, _, org) = app.owner_ids().await;
        let sessions = app.get("/api/user.listSessions", &[], &owner).await;
        let owner_session = sessions.assert_ok()[0]["session"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let side_org = app.create_org(&owner, "Side Organization").await;

        let (alpha, alpha_prod) = project(app, &owner, "Alpha").await;
        let alpha_staging = environment(app, &owner, &alpha, "staging").await;
        let alpha_app = app_id(&application(app, &owner, &alpha_prod, "alpha-web").await);
        let alpha_worker = app_id(&application(app, &owner, &alpha_staging, "alpha-worker").await);
        let (beta, beta_prod) = project(app, &owner, "Beta").await;
        let beta_staging = environment(app, &owner, &beta, "staging").await;
        let beta_app = app_id(&application(app, &owner, &beta_staging, "beta-api").await);

        let admin = app
            .invite_and_join(&owner, "admin@example.com", "admin")
            .await;
        let read_only_key = As::Key(
            app.create_key(
                &admin.who,
                json!({"metadata": {"organizationId": org}, "scope": {"readOnly": true}}),
            )
            .await
            .0,
        );
        let mut every_flag = resource_flags();
        every_flag["canAccessToAPI"] = json!(true);
        let member = member_seeing(
            app,
            &owner,
            "member@example.com",
            every_flag,
            &[&alpha, &beta],
            &[&alpha_prod, &alpha_staging, &beta_staging],
            &[&alpha_worker, &beta_app],
        )
        .await;
        let (member_key, member_key_id) = app
            .create_key(&member.who, json!({"name": "member's"}))
            .await;
        let other_member = member_seeing(
            app,
            &owner,
            "other@example.com",
            json!({}),
            &[&alpha, &beta],
            &[&alpha_prod, &beta_prod],
            &[&alpha_app],
        )
        .await;
        let (owner_key, owner_key_id) = app.create_key(&owner, json!({"name": "owner's"})).await;
        let (scoped_key, _) = app
            .create_key(
                &owner,
                json!({"name": "beta only", "scope": {"projectIds": [beta]}}),
            )
            .await;
        let (metered_key, _) = app
            .create_key(&owner, json!({"name": "metered", "remaining": 10}))
            .await;

        let stranger = stranger(app, &owner, "stranger@example.com").await;
        let (their_project, their_prod) = project(app, &stranger.who, "Theirs").await;
        let their_app = app_id(&application(app, &stranger.who, &their_prod, "their-app").await);
        // The member joins the stranger's organization too, and goes back to ours.
        let inv = app.invite(&stranger.who, &member.email, "member").await;
        app.post(
            "/api/organization.acceptInvitation",
            json!({"invitationId": id_of(&inv)}),
            &member.who,
        )
        .await
        .assert_ok();
        app.post(
            "/api/organization.setActive",
            json!({"organizationId": org}),
            &member.who,
        )
        .await
        .assert_ok();
        assert_eq!(app.active_org(&member.who).await.body["id"], org.as_str());
        assert_eq!(app.active_org(&owner).await.body["id"], org.as_str());

        // The lists mean what the comments say: each member sees some of everything.
        for (who, sees, hidden) in [
            (&member.who, &alpha_worker, &alpha_app),
            (&other_member.who, &alpha_app, &alpha_worker),
        ] {
            let path = "/api/application.one";
            app.get(path, &[("applicationId", sees)], who)
                .await
                .assert_ok();
            app.get(path, &[("applicationId", hidden)], who)
                .await
                .assert_error(401, "permission_denied");
        }

        let domain = |application: &str, host: &str| {
            let body = json!({"applicationId": application, "host": host});
            let owner = owner.clone();
            async move {
                let r = app.post("/api/domain.create", body, &owner).await;
                r.assert_ok()["domainId"].as_str().unwrap().to_owned()
            }
        };
        let alpha_domain = domain(&alpha_app, "alpha.example.com").await;
        let beta_domain = domain(&beta_app, "beta.example.com").await;
        let their_domain = {
            let r = app
                .post(
                    "/api/domain.create",
                    json!({"applicationId": their_app, "host": "theirs.example.com"}),
                    &stranger.who,
                )
                .await;
            r.assert_ok()["domainId"].as_str().unwrap().to_owned()
        };

        let newcomer_token = app.invite(&owner, NEWCOMER, "member").await["token"]
            .as_str()
            .unwrap()
            .to_owned();
        let stranger_invitation = id_of(&app.invite(&owner, "stranger@example.com", "admin").await);
        let other_member_reset = app
            .post(
                "/api/user.createPasswordReset",
                json!({"userId": other_member.user_id}),
                &owner,
            )
            .await
            .assert_ok()["token"]
            .as_str()
            .unwrap()
            .to_owned();

        turn_on(app, &owner).await;
        let (_, admin_backup_codes) = turn_on(app, &admin.who).await;
        let step = app
            .post(
                SIGN_IN,
                json!({"email": admin.email, "password": PASSWORD}),
                &As::Nobody,
            )
            .await;
        let admin_challenge = As::Cookies(format!("keygate.two_factor={}", challenge_of(&step)));
        let r = app
            .post(ENABLE, json!({"password": PASSWORD}), &member.who)
            .await;
        let member_code = code(
            app,
            &secret_of(r.assert_ok()["totpURI"].as_str().unwrap()),
            0,
        );

        World {
            projects: vec![alpha.clone(), beta.clone(), their_project],
            environments: vec![
                alpha_prod,
                alpha_staging.clone(),
                beta_prod.clone(),
                beta_staging.clone(),
                their_prod,
            ],
            applications: vec![alpha_app.clone(), alpha_worker, beta_app.clone(), their_app],
            domains: vec![alpha_domain.clone(), beta_domain.clone(), their_domain],
            alpha_domain,
            beta_domain,
            org,
            side_org,
            their_org: stranger.org.clone(),
            alpha,
            alpha_staging,
            alpha_app,
            beta,
            beta_prod,
            beta_staging,
            beta_app,
            owner,
            owner_session,
            owner_key: As::Key(owner_key),
            owner_key_id,
            scoped_key: As::Key(scoped_key),
            metered_key,
            admin,
            read_only_key,
            member,
            member_key: As::Key(member_key),
            member_key_id,
            other_member,
            stranger,
            newcomer_token,
            stranger_invitation,
            admin_challenge,
            admin_backup_codes,
            member_code,
            other_member_reset,
        }
    }

    /// Every kind of caller, named.
    fn callers(&self) -> Vec<(String, As)> {
        [
            ("owner (session)", &self.owner),
            ("owner (key)", &self.owner_key),
            ("owner (key for beta only)", &self.scoped_key),
            ("admin (session)", &self.admin.who),
            ("admin (read-only key)", &self.read_only_key),
            ("member (session)", &self.member.who),
            ("member (key)", &self.member_key),
            ("other member (session)", &self.other_member.who),
            ("stranger (session)", &self.stranger.who),
        ]
        .into_iter()
        .map(|(n, a)| (n.to_owned(), a.clone()))
        .collect()
    }
}

/// What a read asks about: the world's ids, and those the mutation made.
struct Ids {
    organizations: Vec<String>,
    projects: Vec<String>,
    environments: Vec<String>,
    applications: Vec<String>,
    domains: Vec<String>,
    keys: Vec<String>,
    users: Vec<String>,
}

impl Ids {
    fn of(w: &World) -> Ids {
        Ids {
            organizations: vec![w.org.clone(), w.side_org.clone(), w.their_org.clone()],
            projects: w.projects.clone(),
            environments: w.environments.clone(),
            applications: w.applications.clone(),
            domains: w.domains.clone(),
            keys: vec![w.owner_key_id.clone(), w.member_key_id.clone()],
            users: vec![w.member.user_id.clone(), w.other_member.user_id.clone()],
        }
    }

    /// Adds the ids an answer names.
    fn add_from(&mut self, v: &Value) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    let list = match k.as_str() {
                        "organizationId" => &mut self.organizations,
                        "projectId" => &mut self.projects,
                        "environmentId" => &mut self.environments,
                        "applicationId" => &mut self.applications,
                        "domainId" => &mut self.domains,
                        "userId" => &mut self.users,
                        _ => {
                            self.add_from(x);
                            continue;
                        }
                    };
                    if let Some(s) = x.as_str()
                        && !list.iter().any(|y| y == s)
                    {
                        list.push(s.to_owned());
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|x| self.add_from(x)),
            _ => {}
        }
    }
}

type Query = Vec<(&'static str, String)>;

/// A read operation and the queries it is asked with.
struct Read {
    path: &'static str,
    queries: fn(&Ids) -> Vec<Query>,
}

fn plain(_: &Ids) -> Vec<Query> {
    vec![Vec::new()]
}

fn each(name: &'static str, ids: &[String]) -> Vec<Query> {
    ids.iter().map(|id| vec![(name, id.clone())]).collect()
}

/// Every read of the spec.
fn reads() -> Vec<Read> {
    let r = |path, queries| Read { path, queries };
    vec![
        r(HEALTH, plain),
        r(GET_SESSION, plain),
        r("/api/organization.all", plain),
        r("/api/organization.one", |i| {
            each("organizationId", &i.organizations)
        }),
        r("/api/organization.active", plain),
        r("/api/organization.allInvitations", plain),
        r(USER_GET, plain),
        r("/api/user.listSessions", plain),
        r("/api/user.listApiKeys", plain),
        r("/api/user.apiKeyUsage", |i| each("apiKeyId", &i.keys)),
        r("/api/user.all", plain),
        r("/api/user.one", |i| each("userId", &i.users)),
        r("/api/user.getPermissions", plain),
        r("/api/project.one", |i| each("projectId", &i.projects)),
        r("/api/project.all", plain),
        r("/api/project.search", plain),
        r("/api/environment.one", |i| {
            each("environmentId", &i.environments)
        }),
        r("/api/environment.byProjectId", |i| {
            each("projectId", &i.projects)
        }),
        r("/api/application.one", |i| {
            each("applicationId", &i.applications)
        }),
        r("/api/domain.one", |i| each("domainId", &i.domains)),
        r("/api/domain.byApplicationId", |i| {
            each("applicationId", &i.applications)
        }),
        r("/api/audit.all", plain),
        r("/api/audit.account", plain),
        r("/api/application.search", |i| {
            let mut q = vec![Vec::new()];
            q.extend(each("projectId", &i.projects));
            q.extend(each("environmentId", &i.environments));
            q
        }),
    ]
}

/// One successful call of a mutating operation, chosen to change what other callers
/// hold in memory.
struct Mutation {
    path: &'static str,
    by: fn(&World) -> As,
    body: fn(&World) -> Value,
}

/// A scenario for every mutating operation of the spec.
fn mutations() -> Vec<Mutation> {
    let m = |path, by, body| Mutation { path, by, body };
    vec![
        // ---- auth
        m(
            SIGN_UP,
            |_| As::Nobody,
            |w| {
                json!({"name": "Newcomer", "email": NEWCOMER, "password": PASSWORD,
                   "invitationToken": w.newcomer_token})
            },
        ),
        m(
            SIGN_IN,
            |_| As::Nobody,
            |w| json!({"email": w.member.email, "password": PASSWORD}),
        ),
        m(SIGN_OUT, |w| w.member.who.clone(), |_| json!({})),
        // ---- two-factor
        m(
            ENABLE,
            |w| w.member.who.clone(),
            |_| json!({"password": PASSWORD}),
        ),
        // The member's first code turns its two-factor on.
        m(
            VERIFY_TOTP,
            |w| w.member.who.clone(),
            |w| json!({"code": w.member_code}),
        ),
        m(
            "/api/auth/two-factor/verify-backup-code",
            |w| w.admin_challenge.clone(),
            |w| json!({"code": w.admin_backup_codes[0], "trustDevice": true}),
        ),
        m(
            "/api/auth/two-factor/generate-backup-codes",
            |w| w.admin.who.clone(),
            |_| json!({"password": PASSWORD}),
        ),
        m(
            "/api/auth/two-factor/get-totp-uri",
            |w| w.admin.who.clone(),
            |_| json!({"password": PASSWORD}),
        ),
        m(
            "/api/auth/two-factor/disable",
            |w| w.admin.who.clone(),
            |_| json!({"password": PASSWORD}),
        ),
        // Sessions without two-factor may act in the organization no more.
        m(
            "/api/organization.update",
            |w| w.owner.clone(),
            |w| json!({"organizationId": w.org, "requireTwoFactor": true}),
        ),
        // Every session of the other member ends.
        m(
            "/api/auth/reset-password",
            |_| As::Nobody,
            |w| json!({"token": w.other_member_reset, "newPassword": "a brand new passphrase"}),
        ),
        // ---- organization.*
        m(
            "/api/organization.create",
            |w| w.member.who.clone(),
            |_| json!({"name": "Member's Own"}),
        ),
        m(
            "/api/organization.update",
            |w| w.owner.clone(),
            |w| json!({"organizationId": w.org, "name": "Renamed Organization"}),
        ),
        // Everything of ours goes: keys, memberships, resources, invitations.
        m(
            "/api/organization.delete",
            |w| w.owner.clone(),
            |w| json!({"organizationId": w.org}),
        ),
        m(
            "/api/organization.setActive",
            |w| w.member.who.clone(),
            |w| json!({"organizationId": w.their_org}),
        ),
        m(
            "/api/organization.inviteMember",
            |w| w.admin.who.clone(),
            |_| json!({"email": "later@example.com", "role": "member"}),
        ),
        m(
            "/api/organization.removeInvitation",
            |w| w.owner.clone(),
            |w| json!({"invitationId": w.stranger_invitation}),
        ),
        // The stranger joins us as an admin and acts in our organization from then on.
        m(
            "/api/organization.acceptInvitation",
            |w| w.stranger.who.clone(),
            |w| json!({"invitationId": w.stranger_invitation}),
        ),
        // A member made admin loses its flags and lists, and sees everything.
        m(
            "/api/organization.updateMemberRole",
            |w| w.owner.clone(),
            |w| json!({"memberId": w.member.member_id, "role": "admin"}),
        ),
        // ---- user.*
        m(
            "/api/user.update",
            |w| w.member.who.clone(),
            |_| json!({"name": "Renamed Member"}),
        ),
        m(
            CREATE_KEY,
            |w| w.member.who.clone(),
            |w| json!({"name": "another", "metadata": {"organizationId": w.org}}),
        ),
        m(
            DELETE_KEY,
            |w| w.owner.clone(),
            |w| json!({"apiKeyId": w.member_key_id}),
        ),
        m(
            UPDATE_KEY,
            |w| w.member.who.clone(),
            |w| json!({"apiKeyId": w.member_key_id, "enabled": false}),
        ),
        // Without a grace period the old secret stops working at once.
        m(
            ROTATE_KEY,
            |w| w.owner.clone(),
            |w| json!({"apiKeyId": w.owner_key_id, "gracePeriodSeconds": 0}),
        ),
        // The owner's key ends the owner's session.
        m(
            "/api/user.revokeSession",
            |w| w.owner_key.clone(),
            |w| json!({"sessionId": w.owner_session}),
        ),
        m(
            "/api/user.remove",
            |w| w.owner.clone(),
            |w| json!({"userId": w.member.user_id}),
        ),
        m(
            "/api/user.assignPermissions",
            |w| w.admin.who.clone(),
            |w| {
                json!({
                    "userId": w.member.user_id,
                    "canAccessToAPI": true,
                    "canCreateProjects": true,
                    "accessedProjects": [w.beta],
                    "accessedEnvironments": [w.beta_prod],
                    "accessedServices": [],
                })
            },
        ),
        m(
            "/api/user.createUserWithCredentials",
            |w| w.owner.clone(),
            |_| {
                json!({"email": "created@example.com", "password": PASSWORD,
                   "name": "Created", "role": "member"})
            },
        ),
        // Cancels the other member's earlier link.
        m(
            "/api/user.createPasswordReset",
            |w| w.owner.clone(),
            |w| json!({"userId": w.other_member.user_id}),
        ),
        // ---- project.*
        // What a member creates joins its lists.
        m(
            "/api/project.create",
            |w| w.member.who.clone(),
            |_| json!({"name": "Member's Project"}),
        ),
        m(
            "/api/project.update",
            |w| w.admin.who.clone(),
            |w| json!({"projectId": w.alpha, "name": "Alpha Renamed"}),
        ),
        // On both members' lists, with environments and applications on them too.
        m(
            "/api/project.remove",
            |w| w.admin.who.clone(),
            |w| json!({"projectId": w.alpha}),
        ),
        // ---- environment.*
        m(
            "/api/environment.create",
            |w| w.member_key.clone(),
            |w| json!({"projectId": w.alpha, "name": "preview"}),
        ),
        m(
            "/api/environment.update",
            |w| w.owner.clone(),
            |w| json!({"environmentId": w.alpha_staging, "name": "qa"}),
        ),
        // On the member's lists, with its application.
        m(
            "/api/environment.remove",
            |w| w.admin.who.clone(),
            |w| json!({"environmentId": w.beta_staging}),
        ),
        // ---- application.*
        m(
            "/api/application.create",
            |w| w.member.who.clone(),
            |w| json!({"name": "member-app", "environmentId": w.beta_staging}),
        ),
        m(
            "/api/application.update",
            |w| w.owner_key.clone(),
            |w| json!({"applicationId": w.alpha_app, "name": "alpha-renamed"}),
        ),
        // On the member's lists.
        m(
            "/api/application.delete",
            |w| w.admin.who.clone(),
            |w| json!({"applicationId": w.beta_app}),
        ),
        // ---- domain.*
        m(
            "/api/domain.create",
            |w| w.member.who.clone(),
            |w| json!({"applicationId": w.beta_app, "host": "member.example.com", "path": "/api"}),
        ),
        m(
            "/api/domain.update",
            |w| w.owner_key.clone(),
            |w| json!({"domainId": w.alpha_domain, "host": "alpha2.example.com"}),
        ),
        // On the member's lists.
        m(
            "/api/domain.delete",
            |w| w.admin.who.clone(),
            |w| json!({"domainId": w.beta_domain}),
        ),
        // ---- apiKey.*
        // A use of the member's key, counted like one on the API. (By a session: the
        // use of a caller's key would count too.)
        m(
            "/api/apiKey.verify",
            |w| w.owner.clone(),
            |w| {
                let As::Key(k) = &w.member_key else {
                    unreachable!("the member's key is a key")
                };
                json!({"key": k, "applicationId": w.beta_app, "method": "GET"})
            },
        ),
        // A use of a quota, which the owner's key list shows. Under 20 uses left, each is
        // leased, and so written, one at a time: a larger quota leases more, which only
        // memory holds until a clean stop gives back what is left, and a copy of the file
        // (a crash) then shows fewer uses left, by design.
        m(
            "/api/apiKey.verify",
            |w| w.admin.who.clone(),
            |w| json!({"key": w.metered_key, "method": "POST"}),
        ),
    ]
}

/// `(method, path)` of every operation of the spec.
fn spec_operations() -> BTreeSet<(String, String)> {
    let spec: Value = serde_json::from_str(&keygate::api::spec_json()).unwrap();
    let mut out = BTreeSet::new();
    for (path, ops) in spec["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            out.insert((method.clone(), path.clone()));
        }
    }
    out
}

/// What the spec has that the test does not cover, and what the test names that the
/// spec does not have.
fn coverage() -> String {
    let in_spec = spec_operations();
    let covered: BTreeSet<(String, String)> = reads()
        .iter()
        .map(|r| ("get".to_owned(), r.path.to_owned()))
        .chain(
            mutations()
                .iter()
                .map(|m| ("post".to_owned(), m.path.to_owned())),
        )
        .collect();
    let mut report = String::new();
    let name = |(m, p): &(String, String)| format!("{} {p}", m.to_uppercase());
    let missing: Vec<String> = in_spec.difference(&covered).map(name).collect();
    if !missing.is_empty() {
        writeln!(
            report,
            "operations of the spec this test does not cover (a read to ask, or a mutation \
             with a scenario):\n  {}",
            missing.join("\n  ")
        )
        .unwrap();
    }
    let stale: Vec<String> = covered.difference(&in_spec).map(name).collect();
    if !stale.is_empty() {
        writeln!(
            report,
            "operations this test names that the spec does not have:\n  {}",
            stale.join("\n  ")
        )
        .unwrap();
    }
    report
}

/// Where two answers first differ, as a JSON pointer with both values.
fn first_difference(path: &str, a: &Value, b: &Value) -> String {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, va) in x {
                match y.get(k) {
                    Some(vb) if va == vb => {}
                    Some(vb) => return first_difference(&format!("{path}/{k}"), va, vb),
                    None => return format!("{path}/{k}: {va} here, absent on the fresh server"),
                }
            }
            let extra: Vec<&String> = y.keys().filter(|k| !x.contains_key(*k)).collect();
            format!("{path}: the fresh server also has {extra:?}")
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            let i = (0..x.len()).find(|&i| x[i] != y[i]).unwrap();
            first_difference(&format!("{path}/{i}"), &x[i], &y[i])
        }
        _ => format!(
            "{}: {a} here, {b} on the fresh server",
            if path.is_empty() { "/" } else { path }
        ),
    }
}

/// Asks every read with every query as every caller, of `app` and (when given) of
/// `fresh` in lockstep; answers how the two differed.
async fn ask_everything(
    app: &TestApp,
    fresh: Option<&TestApp>,
    callers: &[(String, As)],
    ids: &Ids,
) -> Vec<String> {
    let mut differences = Vec::new();
    for read in reads() {
        let mut queries = (read.queries)(ids);
        if fresh.is_none() {
            // Warming asks each read once per caller.
            queries.truncate(1);
        }
        for query in queries {
            let q: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
            for (name, who) in callers {
                let here = app.get(read.path, &q, who).await;
                let Some(fresh) = fresh else { continue };
                let there = fresh.get(read.path, &q, who).await;
                if (here.status, &here.body) != (there.status, &there.body) {
                    let shown: Vec<String> = q.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    let what = if here.status == there.status {
                        first_difference("", &here.body, &there.body)
                    } else {
                        format!(
                            "status {} {} here, {} {} on the fresh server",
                            here.status,
                            here.reason(),
                            there.status,
                            there.reason()
                        )
                    };
                    let query = if shown.is_empty() {
                        String::new()
                    } else {
                        format!("?{}", shown.join("&"))
                    };
                    differences.push(format!("GET {}{query} as {name}: {what}", read.path));
                }
            }
        }
    }
    differences
}

/// Runs `m` on a server started from a copy of `template` and compares every answer
/// with a fresh server's; answers what differed.
async fn check(template: &TestApp, w: &World, m: &Mutation) -> Vec<String> {
    let app = template.fresh_copy();
    let mut callers = w.callers();
    let mut ids = Ids::of(w);
    ask_everything(&app, None, &callers, &ids).await;

    // Usage is compared as flushed: a verification's whole effect is a use of the key.
    let flush = || keygate::domain::keys::flush_usage(&app.state);
    flush().await.unwrap();
    let before = dump(&app);
    let r = app.post(m.path, (m.body)(w), &(m.by)(w)).await;
    if r.status != 200 {
        return vec![format!(
            "the scenario did not succeed: {} {}",
            r.status, r.body
        )];
    }
    flush().await.unwrap();
    // Posts that only read: they take a password, which a query string must not carry.
    let reads_only = m.path == "/api/auth/two-factor/get-totp-uri";
    if dump(&app) == before && !reads_only {
        return vec!["the scenario changed nothing in the database".to_owned()];
    }
    ids.add_from(&r.body);
    if m.path == "/api/organization.create" {
        ids.organizations.push(id_of(&r.body));
    }
    // A credential the mutation made is asked with too.
    if let Some(token) = r.session_token() {
        callers.push(("the session it made".to_owned(), As::Cookie(token)));
    }
    if let Some(key) = r.body["key"].as_str() {
        callers.push(("the key it made".to_owned(), As::Key(key.to_owned())));
        ids.keys.push(id_of(&r.body));
    }

    keygate::domain::keys::flush_usage(&app.state)
        .await
        .unwrap();
    let fresh = app.fresh_copy();
    ask_everything(&app, Some(&fresh), &callers, &ids).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn after_every_mutation_every_caller_reads_what_a_fresh_server_answers() {
    let mut report = coverage();

    let template = TestApp::new();
    let world = World::build(&template).await;
    let (template, world) = (Arc::new(template), Arc::new(world));
    // A few at a time: each spends part of its time waiting for the copies' fsyncs.
    let slots = Arc::new(Semaphore::new(4));
    let mut runs = JoinSet::new();
    for i in 0..mutations().len() {
        let (template, world, slots) = (template.clone(), world.clone(), slots.clone());
        runs.spawn(async move {
            let _slot = slots.acquire_owned().await.unwrap();
            let m = &mutations()[i];
            (i, check(&template, &world, m).await)
        });
    }
    let mut found = Vec::new();
    while let Some(done) = runs.join_next().await {
        let (i, differences) = done.unwrap();
        if !differences.is_empty() {
            found.push((i, differences));
        }
    }
    found.sort();
    let all = mutations();
    for (i, differences) in &found {
        writeln!(
            report,
            "after POST {} ({} found):",
            all[*i].path,
            differences.len()
        )
        .unwrap();
        for d in differences.iter().take(12) {
            writeln!(report, "  {d}").unwrap();
        }
        if differences.len() > 12 {
            writeln!(report, "  ...").unwrap();
        }
    }
    assert!(report.is_empty(), "\n{report}");
}
