//! Every procedure of every protected router, called by every kind of caller: the answer
//! must be the one the rules give, a refused call must leave the database as it was,
//! and a caller from another organization must learn and change nothing of ours.
//!
//! The list of procedures comes from the spec, so a procedure added later fails this
//! test until its row is written here.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::helpers::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Caller {
    /// No key, no cookie.
    Nobody,
    /// An `x-api-key` that is not a key of this server's format.
    MalformedKey,
    /// An API key of the owner of another organization.
    OtherKey,
    /// A session of the owner of another organization.
    OtherSession,
    /// A member of ours with no flag and empty access lists.
    MemberWithout,
    /// A member of ours with every flag but empty access lists.
    MemberFlagsOnly,
    /// A member of ours with every flag and our project, environments and application in
    /// its lists.
    MemberWith,
    Admin,
    Owner,
}

const CALLERS: [Caller; 9] = [
    Caller::Nobody,
    Caller::MalformedKey,
    Caller::OtherKey,
    Caller::OtherSession,
    Caller::MemberWithout,
    Caller::MemberFlagsOnly,
    Caller::MemberWith,
    Caller::Admin,
    Caller::Owner,
];

impl Caller {
    fn label(self) -> &'static str {
        match self {
            Caller::Nobody => "no credentials",
            Caller::MalformedKey => "malformed key",
            Caller::OtherKey => "other org's key",
            Caller::OtherSession => "other org's session",
            Caller::MemberWithout => "member without access",
            Caller::MemberFlagsOnly => "member, flags only",
            Caller::MemberWith => "member with access",
            Caller::Admin => "admin",
            Caller::Owner => "owner",
        }
    }

    fn is_stranger(self) -> bool {
        matches!(self, Caller::OtherKey | Caller::OtherSession)
    }

    /// A member of ours that must not see our resources.
    fn is_blind_member(self) -> bool {
        matches!(self, Caller::MemberWithout | Caller::MemberFlagsOnly)
    }
}

/// What a cell expects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Exp {
    Ok,
    Err(u16, &'static str),
}

const OK: Exp = Exp::Ok;
const MISSING_CREDENTIALS: Exp = Exp::Err(401, "missing_credentials");
const INVALID_KEY: Exp = Exp::Err(401, "invalid_api_key");
const DENIED: Exp = Exp::Err(401, "permission_denied");
const WRONG_ORG: Exp = Exp::Err(401, "wrong_organization");
const NOT_A_MEMBER: Exp = Exp::Err(401, "not_a_member");
const NOT_FOUND: Exp = Exp::Err(404, "not_found");
const EMAIL_MISMATCH: Exp = Exp::Err(401, "invitation_email_mismatch");

impl Exp {
    fn show(self) -> String {
        match self {
            Exp::Ok => "200".to_owned(),
            Exp::Err(s, r) => format!("{s} {r}"),
        }
    }
}

/// The expectations of one operation for the callers that hold a credential; nobody and
/// a malformed key are refused everywhere before anything else happens.
#[allow(clippy::too_many_arguments)]
fn row(
    other_key: Exp,
    other_session: Exp,
    member_without: Exp,
    member_flags_only: Exp,
    member_with: Exp,
    admin: Exp,
    owner: Exp,
) -> [Exp; 9] {
    [
        MISSING_CREDENTIALS,
        INVALID_KEY,
        other_key,
        other_session,
        member_without,
        member_flags_only,
        member_with,
        admin,
        owner,
    ]
}

/// A resource procedure on one of our resources: strangers are told it is another
/// organization's, members who may not see it are refused, the rest succeed.
fn on_our_resource() -> [Exp; 9] {
    row(WRONG_ORG, WRONG_ORG, DENIED, DENIED, OK, OK, OK)
}

/// A resource procedure without a resource id: everyone with a credential gets an answer
/// about its own organization, cut down to what it may see.
fn org_wide() -> [Exp; 9] {
    row(OK, OK, OK, OK, OK, OK, OK)
}

/// Creating a resource at the top of the organization: strangers create in their own.
fn creates_top_level() -> [Exp; 9] {
    row(OK, OK, DENIED, OK, OK, OK, OK)
}

pub(crate) enum Call {
    Get(Vec<(&'static str, String)>),
    Post(Value),
}

#[derive(Clone, Copy)]
pub(crate) struct Op {
    pub(crate) method: &'static str,
    pub(crate) path: &'static str,
    /// Tells apart two rows of one operation.
    variant: &'static str,
    call: fn(&World) -> Call,
    expect: [Exp; 9],
}

fn get(path: &'static str, call: fn(&World) -> Call, expect: [Exp; 9]) -> Op {
    Op {
        method: "get",
        path,
        variant: "",
        call,
        expect,
    }
}

fn post(path: &'static str, call: fn(&World) -> Call, expect: [Exp; 9]) -> Op {
    Op {
        method: "post",
        path,
        variant: "",
        call,
        expect,
    }
}

fn q(pairs: &[(&'static str, &str)]) -> Call {
    Call::Get(pairs.iter().map(|(k, v)| (*k, (*v).to_owned())).collect())
}

fn none() -> Call {
    Call::Get(Vec::new())
}

/// Every row of the table. Ids in requests are ours; the comments say why an answer is
/// what it is where that is not the plain rule.
pub(crate) fn operations() -> Vec<Op> {
    vec![
        // ---- organization.*
        // Anyone may found an organization, but only from a session.
        post(
            "/api/organization.create",
            |_| Call::Post(json!({"name": "Fresh Organization"})),
            row(DENIED, OK, OK, OK, OK, OK, OK),
        ),
        get("/api/organization.all", |_| none(), org_wide()),
        // A key acts only in its organization; a session is told it is not a member.
        get(
            "/api/organization.one",
            |w| q(&[("organizationId", &w.org)]),
            row(WRONG_ORG, NOT_A_MEMBER, OK, OK, OK, OK, OK),
        ),
        post(
            "/api/organization.update",
            |w| Call::Post(json!({"organizationId": w.org, "name": "Renamed"})),
            row(WRONG_ORG, NOT_A_MEMBER, DENIED, DENIED, DENIED, OK, OK),
        ),
        // The owner has a second organization, so deleting this one is allowed.
        post(
            "/api/organization.delete",
            |w| Call::Post(json!({"organizationId": w.org})),
            row(WRONG_ORG, NOT_A_MEMBER, DENIED, DENIED, DENIED, DENIED, OK),
        ),
        // Switching organizations is for sessions only.
        post(
            "/api/organization.setActive",
            |w| Call::Post(json!({"organizationId": w.org})),
            row(DENIED, NOT_A_MEMBER, OK, OK, OK, OK, OK),
        ),
        get("/api/organization.active", |_| none(), org_wide()),
        // Strangers invite into their own organization.
        post(
            "/api/organization.inviteMember",
            |_| Call::Post(json!({"email": "newcomer@example.com", "role": "member"})),
            row(OK, OK, DENIED, DENIED, DENIED, OK, OK),
        ),
        get(
            "/api/organization.allInvitations",
            |_| none(),
            row(OK, OK, DENIED, DENIED, DENIED, OK, OK),
        ),
        post(
            "/api/organization.removeInvitation",
            |w| Call::Post(json!({"invitationId": w.invitation})),
            row(WRONG_ORG, WRONG_ORG, DENIED, DENIED, DENIED, OK, OK),
        ),
        // The invitation is for someone else; keys may not accept invitations at all.
        post(
            "/api/organization.acceptInvitation",
            |w| Call::Post(json!({"invitationId": w.invitation})),
            row(
                DENIED,
                EMAIL_MISMATCH,
                EMAIL_MISMATCH,
                EMAIL_MISMATCH,
                EMAIL_MISMATCH,
                EMAIL_MISMATCH,
                EMAIL_MISMATCH,
            ),
        ),
        post(
            "/api/organization.updateMemberRole",
            |w| Call::Post(json!({"memberId": w.without.member_id, "role": "admin"})),
            row(WRONG_ORG, WRONG_ORG, DENIED, DENIED, DENIED, OK, OK),
        ),
        // ---- user.*
        get("/api/user.get", |_| none(), org_wide()),
        get("/api/user.listApiKeys", |_| none(), org_wide()),
        post(
            "/api/user.update",
            |_| Call::Post(json!({"name": "New Name"})),
            org_wide(),
        ),
        // Members need canAccessToAPI.
        post(
            "/api/user.createApiKey",
            |w| Call::Post(json!({"name": "k", "metadata": {"organizationId": w.org}})),
            row(WRONG_ORG, NOT_A_MEMBER, DENIED, OK, OK, OK, OK),
        ),
        // The owner's key: its user may manage it, and the owner may delete any key of
        // its organization; an admin may not.
        post(
            "/api/user.deleteApiKey",
            |w| Call::Post(json!({"apiKeyId": w.owner_key})),
            row(WRONG_ORG, WRONG_ORG, DENIED, DENIED, DENIED, DENIED, OK),
        ),
        post(
            "/api/user.updateApiKey",
            |w| Call::Post(json!({"apiKeyId": w.owner_key, "name": "renamed"})),
            row(WRONG_ORG, WRONG_ORG, DENIED, DENIED, DENIED, DENIED, OK),
        ),
        post(
            "/api/user.rotateApiKey",
            |w| Call::Post(json!({"apiKeyId": w.owner_key})),
            row(WRONG_ORG, WRONG_ORG, DENIED, DENIED, DENIED, DENIED, OK),
        ),
        // The owner's key: its user, and the organization's owner and admins, may read
        // its usage; members may not.
        get(
            "/api/user.apiKeyUsage",
            |w| q(&[("apiKeyId", &w.owner_key)]),
            row(WRONG_ORG, WRONG_ORG, DENIED, DENIED, DENIED, OK, OK),
        ),
        get("/api/user.listSessions", |_| none(), org_wide()),
        // The owner's other session: only the owner may end it; for anyone else it is
        // not one of theirs, whoever's it is.
        post(
            "/api/user.revokeSession",
            |w| Call::Post(json!({"sessionId": w.owner_other_session})),
            row(
                NOT_FOUND, NOT_FOUND, NOT_FOUND, NOT_FOUND, NOT_FOUND, NOT_FOUND, OK,
            ),
        ),
        get(
            "/api/user.all",
            |_| none(),
            row(OK, OK, DENIED, DENIED, DENIED, OK, OK),
        ),
        // Strangers ask in their own organization, where our member is not one.
        get(
            "/api/user.one",
            |w| Call::Get(vec![("userId", w.without.user_id.clone())]),
            row(NOT_FOUND, NOT_FOUND, DENIED, DENIED, DENIED, OK, OK),
        ),
        // Strangers act on their own organization, where our member is not one.
        post(
            "/api/user.remove",
            |w| Call::Post(json!({"userId": w.without.user_id})),
            row(NOT_FOUND, NOT_FOUND, DENIED, DENIED, DENIED, OK, OK),
        ),
        post(
            "/api/user.assignPermissions",
            |w| {
                Call::Post(json!({
                    "userId": w.without.user_id,
                    "canCreateProjects": true,
                    "accessedProjects": [w.project],
                }))
            },
            row(NOT_FOUND, NOT_FOUND, DENIED, DENIED, DENIED, OK, OK),
        ),
        get("/api/user.getPermissions", |_| none(), org_wide()),
        // ---- audit.*: strangers read their own organization's log.
        get(
            "/api/audit.all",
            |_| none(),
            row(OK, OK, DENIED, DENIED, DENIED, OK, OK),
        ),
        get("/api/audit.account", |_| none(), org_wide()),
        post(
            "/api/user.createUserWithCredentials",
            |_| {
                Call::Post(json!({"email": "created@example.com", "password": PASSWORD,
                                  "name": "Created", "role": "member"}))
            },
            // Only installation administrators create accounts outright: the owner is
            // one (the first user), an invited admin and another organization's owner
            // are not.
            row(DENIED, DENIED, DENIED, DENIED, DENIED, DENIED, OK),
        ),
        // Only from a session; strangers act on their own organization, where our member
        // is not one.
        post(
            "/api/user.createPasswordReset",
            |w| Call::Post(json!({"userId": w.without.user_id})),
            row(DENIED, NOT_FOUND, DENIED, DENIED, DENIED, OK, OK),
        ),
        // ---- project.*
        post(
            "/api/project.create",
            |_| Call::Post(json!({"name": "Fresh Project"})),
            creates_top_level(),
        ),
        get(
            "/api/project.one",
            |w| q(&[("projectId", &w.project)]),
            on_our_resource(),
        ),
        get("/api/project.all", |_| none(), org_wide()),
        post(
            "/api/project.update",
            |w| Call::Post(json!({"projectId": w.project, "name": "Renamed"})),
            on_our_resource(),
        ),
        post(
            "/api/project.remove",
            |w| Call::Post(json!({"projectId": w.project})),
            on_our_resource(),
        ),
        get("/api/project.search", |_| none(), org_wide()),
        // ---- environment.*
        post(
            "/api/environment.create",
            |w| Call::Post(json!({"projectId": w.project, "name": "fresh-env"})),
            on_our_resource(),
        ),
        get(
            "/api/environment.one",
            |w| q(&[("environmentId", &w.production)]),
            on_our_resource(),
        ),
        get(
            "/api/environment.byProjectId",
            |w| q(&[("projectId", &w.project)]),
            on_our_resource(),
        ),
        post(
            "/api/environment.update",
            |w| Call::Post(json!({"environmentId": w.staging, "description": "changed"})),
            on_our_resource(),
        ),
        post(
            "/api/environment.remove",
            |w| Call::Post(json!({"environmentId": w.staging})),
            on_our_resource(),
        ),
        // ---- application.*
        post(
            "/api/application.create",
            |w| Call::Post(json!({"name": "fresh-app", "environmentId": w.production})),
            on_our_resource(),
        ),
        get(
            "/api/application.one",
            |w| q(&[("applicationId", &w.application)]),
            on_our_resource(),
        ),
        post(
            "/api/application.update",
            |w| Call::Post(json!({"applicationId": w.application, "name": "renamed"})),
            on_our_resource(),
        ),
        post(
            "/api/application.delete",
            |w| Call::Post(json!({"applicationId": w.application})),
            on_our_resource(),
        ),
        get("/api/application.search", |_| none(), org_wide()),
        Op {
            variant: "projectId",
            ..get(
                "/api/application.search",
                |w| q(&[("projectId", &w.project)]),
                on_our_resource(),
            )
        },
        Op {
            variant: "environmentId",
            ..get(
                "/api/application.search",
                |w| q(&[("environmentId", &w.staging)]),
                on_our_resource(),
            )
        },
        // ---- domain.*: the rules of the application they belong to.
        post(
            "/api/domain.create",
            |w| Call::Post(json!({"applicationId": w.application, "host": "fresh.example.com"})),
            on_our_resource(),
        ),
        get(
            "/api/domain.one",
            |w| q(&[("domainId", &w.domain)]),
            on_our_resource(),
        ),
        get(
            "/api/domain.byApplicationId",
            |w| q(&[("applicationId", &w.application)]),
            on_our_resource(),
        ),
        post(
            "/api/domain.update",
            |w| Call::Post(json!({"domainId": w.domain, "path": "/changed"})),
            on_our_resource(),
        ),
        post(
            "/api/domain.delete",
            |w| Call::Post(json!({"domainId": w.domain})),
            on_our_resource(),
        ),
        // ---- apiKey.verify: owners and admins, each of its own organization's keys; a
        // stranger is told our key does not exist, in a 200 that names nothing of ours.
        post(
            "/api/apiKey.verify",
            |w| {
                let As::Key(k) = &w.owner_keys.plain else {
                    unreachable!("a key")
                };
                Call::Post(json!({"key": k}))
            },
            row(OK, OK, DENIED, DENIED, DENIED, OK, OK),
        ),
        // Naming our application tells a stranger only that it is another organization's.
        Op {
            variant: "applicationId",
            ..post(
                "/api/apiKey.verify",
                |w| {
                    let As::Key(k) = &w.owner_keys.plain else {
                        unreachable!("a key")
                    };
                    Call::Post(json!({"key": k, "applicationId": w.application, "method": "POST"}))
                },
                row(WRONG_ORG, WRONG_ORG, DENIED, DENIED, DENIED, OK, OK),
            )
        },
    ]
}

/// Secrets of the owner's keys, one of each kind the policy tells apart.
pub(crate) struct OwnerKeys {
    /// No limit at all.
    pub(crate) plain: As,
    pub(crate) read_only: As,
    /// Limited to our project.
    pub(crate) scoped: As,
    /// Expires (in a day): a limit that is not a scope.
    pub(crate) expiring: As,
}

impl OwnerKeys {
    async fn make(app: &TestApp, owner: &As, org: &str, project: &str) -> OwnerKeys {
        let make = |name: &'static str, extra: Value| async move {
            let mut body = json!({"name": name, "metadata": {"organizationId": org}});
            body.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            let r = app.post("/api/user.createApiKey", body, owner).await;
            As::Key(r.assert_ok()["key"].as_str().unwrap().to_owned())
        };
        OwnerKeys {
            plain: make("plain", json!({})).await,
            read_only: make("read-only", json!({"scope": {"readOnly": true}})).await,
            scoped: make("scoped", json!({"scope": {"projectIds": [project]}})).await,
            expiring: make("expiring", json!({"expiresIn": 86_400})).await,
        }
    }
}

/// Our organization with one of everything, its people, and a stranger's organization.
pub(crate) struct World {
    pub(crate) app: TestApp,
    org: String,
    pub(crate) owner: As,
    pub(crate) admin: Joined,
    pub(crate) without: Joined,
    pub(crate) flags_only: Joined,
    pub(crate) with: Joined,
    stranger: Stranger,
    project: String,
    production: String,
    staging: String,
    application: String,
    /// Our application's domain.
    domain: String,
    invitation: String,
    owner_key: String,
    /// Keys of the owner with each kind of limit the policy tells apart.
    pub(crate) owner_keys: OwnerKeys,
    owner_other_session: String,
    /// Ids, names and emails of ours that no stranger may read.
    ours: Vec<String>,
    /// Ids and names of our resources that a member without access may not read.
    resources: Vec<String>,
}

impl World {
    pub(crate) async fn build() -> World {
        let app = TestApp::new();
        let (owner, owner_id, org) = app.owner_ids().await;
        // A second session of the owner's, to be ended by user.revokeSession.
        app.sign_in(OWNER_EMAIL, PASSWORD).await;
        let sessions = app.get("/api/user.listSessions", &[], &owner).await;
        let owner_other_session = sessions
            .assert_ok()
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["current"] == false)
            .expect("a second session")["session"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let second = app
            .post(
                "/api/organization.create",
                json!({"name": "Our Second Organization"}),
                &owner,
            )
            .await;
        let second = id_of(second.assert_ok());

        let (project, production) = project(&app, &owner, "Secret Project").await;
        let staging = environment(&app, &owner, &project, "hidden-staging").await;
        let a = application(&app, &owner, &production, "hidden-app").await;
        let application = app_id(&a);

        let mut all_flags = resource_flags();
        all_flags["canAccessToAPI"] = json!(true);
        let admin = app
            .invite_and_join(&owner, "admin@example.com", "admin")
            .await;
        let without = app
            .invite_and_join(&owner, "without@example.com", "member")
            .await;
        let flags_only = member_seeing(
            &app,
            &owner,
            "flags@example.com",
            all_flags.clone(),
            &[],
            &[],
            &[],
        )
        .await;
        let with = member_seeing(
            &app,
            &owner,
            "with@example.com",
            all_flags,
            &[&project],
            &[&production, &staging],
            &[&application],
        )
        .await;

        let key = app
            .post(
                "/api/user.createApiKey",
                json!({"name": "owner's", "metadata": {"organizationId": org}}),
                &owner,
            )
            .await;
        let owner_key = id_of(key.assert_ok());
        let owner_keys = OwnerKeys::make(&app, &owner, &org, &project).await;
        let invitation = id_of(&app.invite(&owner, "pending@example.com", "member").await);
        let d = app
            .post(
                "/api/domain.create",
                json!({"applicationId": application, "host": "hidden.example.com", "path": "/secret"}),
                &owner,
            )
            .await;
        let domain = d.assert_ok()["domainId"].as_str().unwrap().to_owned();

        let stranger = stranger(&app, &owner, "stranger@example.com").await;
        crate::helpers::project(&app, &stranger.who, "Their Project").await;

        let mut ours = vec![
            org.clone(),
            second,
            "My Organization".to_owned(),
            "Our Second".to_owned(),
            owner_id,
            OWNER_EMAIL.to_owned(),
            owner_key.clone(),
            invitation.clone(),
            "pending@example.com".to_owned(),
        ];
        for j in [&admin, &without, &flags_only, &with] {
            ours.extend([j.user_id.clone(), j.member_id.clone(), j.email.clone()]);
        }
        let resources = vec![
            project.clone(),
            "Secret Project".to_owned(),
            production.clone(),
            staging.clone(),
            "hidden-staging".to_owned(),
            application.clone(),
            "hidden-app".to_owned(),
            a["appName"].as_str().unwrap().to_owned(),
            domain.clone(),
            "hidden.example.com".to_owned(),
        ];
        ours.extend(resources.iter().cloned());
        World {
            app,
            org,
            owner,
            admin,
            without,
            flags_only,
            with,
            stranger,
            project,
            production,
            staging,
            application,
            domain,
            invitation,
            owner_key,
            owner_keys,
            owner_other_session,
            ours,
            resources,
        }
    }

    fn who(&self, c: Caller) -> As {
        match c {
            Caller::Nobody => As::Nobody,
            Caller::MalformedKey => As::Key("not-a-keygate-key".to_owned()),
            Caller::OtherKey => self.stranger.key.clone(),
            Caller::OtherSession => self.stranger.who.clone(),
            Caller::MemberWithout => self.without.who.clone(),
            Caller::MemberFlagsOnly => self.flags_only.who.clone(),
            Caller::MemberWith => self.with.who.clone(),
            Caller::Admin => self.admin.who.clone(),
            Caller::Owner => self.owner.clone(),
        }
    }

    async fn send(&self, op: &Op, c: Caller) -> Reply {
        self.send_as(op, &self.who(c)).await
    }

    pub(crate) async fn send_as(&self, op: &Op, who: &As) -> Reply {
        match (op.call)(self) {
            Call::Get(query) => {
                let query: Vec<(&str, &str)> =
                    query.iter().map(|(k, v)| (*k, v.as_str())).collect();
                self.app.get(op.path, &query, who).await
            }
            Call::Post(body) => self.app.post(op.path, body, who).await,
        }
    }

    /// The rows that mention anything of ours.
    fn our_rows(&self) -> Vec<String> {
        dump(&self.app)
            .into_iter()
            .filter(|line| self.ours.iter().any(|o| line.contains(o.as_str())))
            .collect()
    }
}

fn code_of(status: u16) -> &'static str {
    match status {
        400 => "BAD_REQUEST",
        401 => "UNAUTHORIZED",
        403 => "FORBIDDEN",
        404 => "NOT_FOUND",
        409 => "CONFLICT",
        _ => "?",
    }
}

/// Whether the answer is the expected one; and what else is wrong with it.
fn judge(w: &World, op: &Op, c: Caller, exp: Exp, r: &Reply) -> (bool, Vec<String>) {
    let mut notes = Vec::new();
    let answered = match exp {
        Exp::Ok => r.status == 200,
        Exp::Err(status, reason) => (r.status, r.reason()) == (status, reason),
    };
    if let Exp::Err(status, _) = exp
        && answered
        && (r.code() != code_of(status) || !r.body["message"].is_string())
    {
        notes.push(format!("malformed error body {}", r.body));
    }
    if r.status == 200 {
        let text = r.body.to_string();
        let secret: &[String] = if c.is_stranger() {
            &w.ours
        } else if c.is_blind_member()
            && [
                "/api/project.",
                "/api/environment.",
                "/api/application.",
                "/api/domain.",
            ]
            .iter()
            .any(|p| op.path.starts_with(p))
        {
            &w.resources
        } else {
            &[]
        };
        let leaked: Vec<&String> = secret
            .iter()
            .filter(|s| text.contains(s.as_str()))
            .collect();
        if !leaked.is_empty() {
            notes.push(format!("leaks {leaked:?}"));
        }
    }
    (answered, notes)
}

/// One row of the report: the call and caller, what was expected, what came, notes.
type Mismatch = [String; 4];

/// Runs one cell against `w`. Returns the mismatch, if any, and whether the database
/// changed.
async fn run_cell(w: &World, op: &Op, c: Caller, exp: Exp) -> (Option<Mismatch>, bool) {
    let before = dump(&w.app);
    let ours_before = w.our_rows();

    let r = w.send(op, c).await;

    let (answered, mut notes) = judge(w, op, c, exp, &r);
    let after = dump(&w.app);
    let changed = after != before;
    if r.status != 200 && changed {
        notes.push("a refused call changed the database".to_owned());
    }
    if c.is_stranger() && w.our_rows() != ours_before {
        notes.push("a stranger changed our rows".to_owned());
    }
    if answered && notes.is_empty() {
        return (None, changed);
    }
    let got = if r.status == 200 {
        "200".to_owned()
    } else {
        format!("{} {}", r.status, r.reason())
    };
    let name = if op.variant.is_empty() {
        format!("{} {}", op.method.to_uppercase(), op.path)
    } else {
        format!("{} {} ({})", op.method.to_uppercase(), op.path, op.variant)
    };
    let m = [
        format!("{name} as {}", c.label()),
        exp.show(),
        got,
        notes.join("; "),
    ];
    (Some(m), changed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_procedure_answers_every_kind_of_caller_as_the_rules_say() {
    let table = operations();

    // Every operation of the spec outside health and auth must have a row.
    let spec: Value = serde_json::from_str(&keygate::api::spec_json()).unwrap();
    let mut in_spec = BTreeSet::new();
    for (path, ops) in spec["paths"].as_object().unwrap() {
        if !path.starts_with("/api/") || path == HEALTH || path.starts_with("/api/auth/") {
            continue;
        }
        for method in ops.as_object().unwrap().keys() {
            in_spec.insert((method.clone(), path.clone()));
        }
    }
    let listed: BTreeSet<(String, String)> = table
        .iter()
        .map(|op| (op.method.to_owned(), op.path.to_owned()))
        .collect();
    let unlisted: Vec<String> = in_spec
        .difference(&listed)
        .map(|(m, p)| format!("{} {p}", m.to_uppercase()))
        .collect();
    let stale: Vec<String> = listed
        .difference(&in_spec)
        .map(|(m, p)| format!("{} {p}", m.to_uppercase()))
        .collect();

    // A call that is meant to change something gets a world of its own; those worlds
    // are built a few at a time while the other cells share one world.
    let slots = Arc::new(Semaphore::new(4));
    let mut fresh = JoinSet::new();
    let mut cells = Vec::new();
    for (row, op) in table.iter().enumerate() {
        for (i, &c) in CALLERS.iter().enumerate() {
            let exp = op.expect[i];
            if op.method == "post" && exp == Exp::Ok {
                let (op, slots) = (*op, Arc::clone(&slots));
                fresh.spawn(async move {
                    let _slot = slots.acquire_owned().await.unwrap();
                    let w = World::build().await;
                    (row, i, run_cell(&w, &op, c, exp).await.0)
                });
            } else {
                cells.push((row, i));
            }
        }
    }
    let total = cells.len() + fresh.len();

    let mut mismatches: Vec<(usize, usize, Mismatch)> = Vec::new();
    let mut shared = World::build().await;
    for (row, i) in cells {
        let (m, changed) = run_cell(&shared, &table[row], CALLERS[i], table[row].expect[i]).await;
        if let Some(m) = m {
            mismatches.push((row, i, m));
        }
        if changed {
            // Something that should not have changed the shared world did.
            shared = World::build().await;
        }
    }
    while let Some(done) = fresh.join_next().await {
        if let (row, i, Some(m)) = done.unwrap() {
            mismatches.push((row, i, m));
        }
    }
    mismatches.sort_by_key(|(row, i, _)| (*row, *i));

    let mut report = String::new();
    if !unlisted.is_empty() {
        writeln!(
            report,
            "operations in the spec that this test's table does not list (add a row for each):"
        )
        .unwrap();
        for u in &unlisted {
            writeln!(report, "  {u}").unwrap();
        }
    }
    if !stale.is_empty() {
        writeln!(report, "rows for operations the spec no longer has:").unwrap();
        for s in &stale {
            writeln!(report, "  {s}").unwrap();
        }
    }
    if !mismatches.is_empty() {
        let width = mismatches
            .iter()
            .map(|(_, _, m)| m[0].len())
            .max()
            .unwrap_or(0);
        writeln!(
            report,
            "{} of {total} cells answered otherwise:\n  {:width$}  {:24}  {:24}  note",
            mismatches.len(),
            "call",
            "expected",
            "got"
        )
        .unwrap();
        for (_, _, [call, expected, got, note]) in &mismatches {
            writeln!(report, "  {call:width$}  {expected:24}  {got:24}  {note}").unwrap();
        }
    }
    println!("{total} cells checked");
    assert!(report.is_empty(), "\n{report}");
}
