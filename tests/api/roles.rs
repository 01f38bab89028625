//! The role rules as one table: every kind of caller against every management action,
//! each cell in a fresh app. A failure prints the whole table with the wrong cells marked.

use std::fmt;

use serde_json::{Value, json};

use crate::helpers::*;

/// Who calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Caller {
    Owner,
    Admin,
    /// A member with canCreateProjects and canAccessToAPI.
    FlaggedMember,
    /// A member with no flag.
    PlainMember,
    /// A user of another organization, whose session acts in that organization.
    Outsider,
    /// The same user with its session aimed at our organization, as a stale session
    /// would be: membership must be checked on every request, not only by setActive.
    StaleOutsider,
}

impl Caller {
    const ALL: [Caller; 6] = [
        Caller::Owner,
        Caller::Admin,
        Caller::FlaggedMember,
        Caller::PlainMember,
        Caller::Outsider,
        Caller::StaleOutsider,
    ];

    fn label(self) -> &'static str {
        match self {
            Caller::Owner => "owner",
            Caller::Admin => "admin",
            Caller::FlaggedMember => "member with flags",
            Caller::PlainMember => "member without flags",
            Caller::Outsider => "user of another org",
            Caller::StaleOutsider => "outsider aimed at this org",
        }
    }
}

/// What the caller tries, always aimed at the owner's organization.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    InviteMember,
    AllInvitations,
    RemoveInvitation,
    RoleOfMember,
    RoleOfAdmin,
    RoleOfOwner,
    RemoveMember,
    RemoveAdmin,
    AssignPermissions,
    UpdateOrganization,
    DeleteOrganization,
    UserAll,
    GetPermissions,
    CreateUserWithCredentials,
}

impl Action {
    const ALL: [Action; 14] = [
        Action::InviteMember,
        Action::AllInvitations,
        Action::RemoveInvitation,
        Action::RoleOfMember,
        Action::RoleOfAdmin,
        Action::RoleOfOwner,
        Action::RemoveMember,
        Action::RemoveAdmin,
        Action::AssignPermissions,
        Action::UpdateOrganization,
        Action::DeleteOrganization,
        Action::UserAll,
        Action::GetPermissions,
        Action::CreateUserWithCredentials,
    ];

    fn label(self) -> &'static str {
        match self {
            Action::InviteMember => "inviteMember",
            Action::AllInvitations => "allInvitations",
            Action::RemoveInvitation => "removeInvitation",
            Action::RoleOfMember => "updateMemberRole(member)",
            Action::RoleOfAdmin => "updateMemberRole(admin)",
            Action::RoleOfOwner => "updateMemberRole(owner)",
            Action::RemoveMember => "user.remove(member)",
            Action::RemoveAdmin => "user.remove(admin)",
            Action::AssignPermissions => "assignPermissions",
            Action::UpdateOrganization => "organization.update",
            Action::DeleteOrganization => "organization.delete",
            Action::UserAll => "user.all",
            Action::GetPermissions => "user.getPermissions",
            Action::CreateUserWithCredentials => "createUserWithCredentials",
        }
    }
}

/// What a cell must do to the owner's organization.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// 200, and the organization changed.
    Changes,
    /// 200, and the organization did not change (a read, or a write elsewhere).
    Untouched,
    /// An error with this status and reason; the organization did not change.
    Refused(u16, &'static str),
}

/// What happened, in the same terms.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Got {
    status: u16,
    reason: String,
    changed: bool,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Changes => f.write_str("200, org changed"),
            Outcome::Untouched => f.write_str("200, org untouched"),
            Outcome::Refused(s, r) => write!(f, "{s} {r}"),
        }
    }
}

impl fmt::Display for Got {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.status, self.changed) {
            (200, true) => f.write_str("200, org changed"),
            (200, false) => f.write_str("200, org untouched"),
            (s, false) => write!(f, "{s} {}", self.reason),
            (s, true) => write!(f, "{s} {} BUT org changed", self.reason),
        }
    }
}

/// The rules. Owner: everything but changing its own role. Admin: everything but
/// deleting the organization, touching the owner or another admin, or creating accounts
/// outright (the owner, as the first user, is an installation administrator; the admin
/// is not). Members, with or
/// without flags: only their own permissions. A user of another organization acts in
/// its own one (so org-wide calls succeed there and leave ours alone) and is refused
/// every id of ours; a session aimed at an organization it is not in is refused outright.
pub fn expected(caller: Caller, action: Action) -> Outcome {
    use Action::*;
    use Caller::*;
    const DENIED: Outcome = Outcome::Refused(401, "permission_denied");
    match (caller, action) {
        (StaleOutsider, _) => Outcome::Refused(401, "not_a_member"),
        (_, GetPermissions) => Outcome::Untouched,
        (Owner, RoleOfOwner) => DENIED,
        (Owner, AllInvitations | UserAll) => Outcome::Untouched,
        (Owner, _) => Outcome::Changes,
        (Admin, RoleOfAdmin | RoleOfOwner | RemoveAdmin | DeleteOrganization) => DENIED,
        (Admin, AllInvitations | UserAll) => Outcome::Untouched,
        // Only installation administrators create accounts outright: the owner is the
        // first user, an invited admin is none.
        (Admin, CreateUserWithCredentials) => DENIED,
        (Admin, _) => Outcome::Changes,
        (FlaggedMember | PlainMember, _) => DENIED,
        (Outsider, InviteMember | AllInvitations | UserAll) => Outcome::Untouched,
        // The owner of its own organization, but no installation administrator.
        (Outsider, CreateUserWithCredentials) => DENIED,
        (Outsider, RemoveInvitation | RoleOfMember | RoleOfAdmin | RoleOfOwner) => {
            Outcome::Refused(401, "wrong_organization")
        }
        (Outsider, RemoveMember | RemoveAdmin | AssignPermissions) => {
            Outcome::Refused(404, "not_found")
        }
        (Outsider, UpdateOrganization | DeleteOrganization) => {
            Outcome::Refused(401, "not_a_member")
        }
    }
}

/// The owner's organization with one user of each kind, a pending invitation, and an
/// outsider who owns another organization.
struct World {
    app: TestApp,
    org: String,
    owner: As,
    owner_member: String,
    admin: Joined,
    other_admin: Joined,
    flagged: Joined,
    plain: Joined,
    target: Joined,
    outsider: Joined,
    invitation: String,
}

impl World {
    async fn new() -> World {
        let app = TestApp::new();
        let (owner, owner_id, org) = app.owner_ids().await;
        let admin = app
            .invite_and_join(&owner, "admin@example.com", "admin")
            .await;
        let other_admin = app
            .invite_and_join(&owner, "admin2@example.com", "admin")
            .await;
        let flagged = member_seeing(
            &app,
            &owner,
            "flagged@example.com",
            json!({"canCreateProjects": true, "canAccessToAPI": true}),
            &[],
            &[],
            &[],
        )
        .await;
        let plain = app
            .invite_and_join(&owner, "plain@example.com", "member")
            .await;
        let target = app
            .invite_and_join(&owner, "target@example.com", "member")
            .await;
        // The outsider joins, founds its own organization, moves there, and is removed.
        let outsider = app
            .invite_and_join(&owner, "outsider@example.com", "member")
            .await;
        let own = app
            .post(
                "/api/organization.create",
                json!({"name": "Outside"}),
                &outsider.who,
            )
            .await;
        app.post(
            "/api/organization.setActive",
            json!({"organizationId": id_of(own.assert_ok())}),
            &outsider.who,
        )
        .await
        .assert_ok();
        app.post(
            "/api/user.remove",
            json!({"userId": outsider.user_id}),
            &owner,
        )
        .await
        .assert_ok();
        // A second organization, so deleting ours is not refused as the owner's last.
        app.post("/api/organization.create", json!({"name": "Spare"}), &owner)
            .await
            .assert_ok();
        let invitation = id_of(&app.invite(&owner, "pending@example.com", "member").await);
        World {
            owner_member: app.member_id(&org, &owner_id),
            app,
            org,
            owner,
            admin,
            other_admin,
            flagged,
            plain,
            target,
            outsider,
            invitation,
        }
    }

    fn who(&self, caller: Caller) -> As {
        match caller {
            Caller::Owner => self.owner.clone(),
            Caller::Admin => self.admin.who.clone(),
            Caller::FlaggedMember => self.flagged.who.clone(),
            Caller::PlainMember => self.plain.who.clone(),
            Caller::Outsider => self.outsider.who.clone(),
            Caller::StaleOutsider => {
                self.app.exec(
                    "UPDATE sessions SET active_organization_id = ?1 WHERE user_id = ?2",
                    &[&self.org, &self.outsider.user_id],
                );
                self.outsider.who.clone()
            }
        }
    }

    async fn run(&self, action: Action, who: &As) -> Reply {
        let app = &self.app;
        let post = |path: &'static str, body: Value| async move { app.post(path, body, who).await };
        match action {
            Action::InviteMember => {
                post(
                    "/api/organization.inviteMember",
                    json!({"email": "new@example.com", "role": "member"}),
                )
                .await
            }
            Action::AllInvitations => app.get("/api/organization.allInvitations", &[], who).await,
            Action::RemoveInvitation => {
                post(
                    "/api/organization.removeInvitation",
                    json!({"invitationId": self.invitation}),
                )
                .await
            }
            Action::RoleOfMember => {
                post(
                    "/api/organization.updateMemberRole",
                    json!({"memberId": self.target.member_id, "role": "admin"}),
                )
                .await
            }
            Action::RoleOfAdmin => {
                post(
                    "/api/organization.updateMemberRole",
                    json!({"memberId": self.other_admin.member_id, "role": "member"}),
                )
                .await
            }
            Action::RoleOfOwner => {
                post(
                    "/api/organization.updateMemberRole",
                    json!({"memberId": self.owner_member, "role": "admin"}),
                )
                .await
            }
            Action::RemoveMember => {
                post("/api/user.remove", json!({"userId": self.target.user_id})).await
            }
            Action::RemoveAdmin => {
                post(
                    "/api/user.remove",
                    json!({"userId": self.other_admin.user_id}),
                )
                .await
            }
            Action::AssignPermissions => {
                post(
                    "/api/user.assignPermissions",
                    json!({"userId": self.target.user_id, "canCreateProjects": true}),
                )
                .await
            }
            Action::UpdateOrganization => {
                post(
                    "/api/organization.update",
                    json!({"organizationId": self.org, "name": "Renamed"}),
                )
                .await
            }
            Action::DeleteOrganization => {
                post(
                    "/api/organization.delete",
                    json!({"organizationId": self.org}),
                )
                .await
            }
            Action::UserAll => app.get("/api/user.all", &[], who).await,
            Action::GetPermissions => app.get("/api/user.getPermissions", &[], who).await,
            Action::CreateUserWithCredentials => {
                post(
                    "/api/user.createUserWithCredentials",
                    json!({"email": "created@example.com", "password": PASSWORD,
                           "name": "Created", "role": "member"}),
                )
                .await
            }
        }
    }

    /// Everything about the owner's organization a management action could change.
    fn fingerprint(&self) -> Value {
        let flags = keygate::model::Flag::ALL.map(|f| f.column()).join(" || ");
        self.app.scalar(
            &format!(
                "SELECT coalesce((SELECT name FROM organizations WHERE id = ?1), '<deleted>')
                 || ' | ' || coalesce((SELECT group_concat(
                        user_id || ':' || role || ':' || {flags},
                        ',' ORDER BY user_id) FROM members WHERE organization_id = ?1), '')
                 || ' | ' || coalesce((SELECT group_concat(email || ':' || role || ':' || status,
                        ',' ORDER BY email, id) FROM invitations WHERE organization_id = ?1), '')"
            ),
            &[&self.org],
        )
    }
}

/// One cell of the table, as expected and as it went.
pub struct Cell {
    caller: Caller,
    action: Action,
    expected: Outcome,
    got: Got,
}

impl Cell {
    fn ok(&self) -> bool {
        let e = self.expected;
        let g = &self.got;
        match e {
            Outcome::Changes => g.status == 200 && g.changed,
            Outcome::Untouched => g.status == 200 && !g.changed,
            Outcome::Refused(s, r) => g.status == s && g.reason == r && !g.changed,
        }
    }
}

/// Runs each cell in a fresh app.
pub async fn run_cells(cells: &[(Caller, Action)]) -> Vec<Cell> {
    let mut out = Vec::new();
    for &(caller, action) in cells {
        let world = World::new().await;
        let who = world.who(caller);
        let before = world.fingerprint();
        let r = world.run(action, &who).await;
        let changed = world.fingerprint() != before;
        out.push(Cell {
            caller,
            action,
            expected: expected(caller, action),
            got: Got {
                status: r.status,
                reason: r.reason().to_owned(),
                changed,
            },
        });
    }
    out
}

/// The table with wrong cells marked, or None when every cell is right.
pub fn report(cells: &[Cell]) -> Option<String> {
    let wrong = cells.iter().filter(|c| !c.ok()).count();
    if wrong == 0 {
        return None;
    }
    let mut s = format!(
        "{wrong} of {} cells are wrong (marked ✗):\n\n   {:<27} {:<27} {:<30} {}\n",
        cells.len(),
        "caller",
        "action",
        "expected",
        "got"
    );
    for c in cells {
        s.push_str(&format!(
            "{}  {:<27} {:<27} {:<30} {}\n",
            if c.ok() { " " } else { "✗" },
            c.caller.label(),
            c.action.label(),
            c.expected.to_string(),
            c.got
        ));
    }
    Some(s)
}

#[tokio::test]
async fn every_caller_gets_what_its_role_allows_for_every_management_action() {
    let cells: Vec<(Caller, Action)> = Caller::ALL
        .into_iter()
        .flat_map(|c| Action::ALL.into_iter().map(move |a| (c, a)))
        .collect();

    let results = run_cells(&cells).await;

    assert_eq!(results.len(), 6 * 14);
    if let Some(table) = report(&results) {
        panic!("{table}");
    }
}

#[tokio::test]
async fn a_user_of_another_organization_acts_only_in_its_own() {
    let world = World::new().await;
    let (app, who) = (&world.app, &world.outsider.who);
    let own = app.active_org(who).await;
    let own = id_of(own.assert_ok());
    assert_ne!(own, world.org);

    let invited = world.run(Action::InviteMember, who).await;
    let created = world.run(Action::CreateUserWithCredentials, who).await;
    let members = world.run(Action::UserAll, who).await;
    // An owner of another organization invites; it cannot create accounts outright.
    created.assert_error(401, "permission_denied");
    let invitations = world.run(Action::AllInvitations, who).await;

    assert_eq!(invited.assert_ok()["organizationId"], own.as_str());
    let members = members.assert_ok().as_array().unwrap().clone();
    let mut emails: Vec<&str> = members
        .iter()
        .map(|m| m["user"]["email"].as_str().unwrap())
        .collect();
    emails.sort();
    assert_eq!(emails, ["outsider@example.com"]);
    let invitations = invitations.assert_ok().as_array().unwrap().clone();
    assert_eq!(invitations.len(), 1);
    assert_eq!(invitations[0]["email"], "new@example.com");
    assert_eq!(
        app.count_where(
            "SELECT count(*) FROM invitations WHERE organization_id = ?1 AND email = 'new@example.com'",
            &[&world.org]
        ),
        0
    );
    assert_eq!(
        app.count_where(
            "SELECT count(*) FROM members m JOIN users u ON u.id = m.user_id
             WHERE m.organization_id = ?1 AND u.email = 'created@example.com'",
            &[&world.org]
        ),
        0
    );
}
