//! Fine points of the membership rules that were once wrong: all of a request's problems
//! are reported together, and a demoted admin keeps no member permissions.

use serde_json::json;

use crate::helpers::*;

/// `domain::invitations::invite` checks the role with its own `Checks`, and returns the
/// email's issues alone when both fields are wrong, so the caller learns about the role
/// only on a second try.
#[tokio::test]
async fn a_bad_email_and_a_bad_role_are_reported_together() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;

    let r = app
        .post(
            "/api/organization.inviteMember",
            json!({"email": "not an email", "role": "superuser"}),
            &owner,
        )
        .await;

    r.assert_error(400, "validation_failed");
    assert_eq!(r.issue_paths(), ["email", "role"]);
    assert_eq!(app.count("invitations"), 0);
}

/// An admin's membership row is written with every flag set
/// (`domain::invitations::accept_in`, `domain::members::create_with_credentials`), and
/// `domain::members::update_role` changes only the role. An admin demoted to member so
/// keeps every member permission (create/delete projects, environments, services, API
/// access) although nobody gave it any: a member holds only what was assigned to it.
#[tokio::test]
async fn a_demoted_admin_holds_no_member_permission_it_was_not_given() {
    let app = TestApp::new();
    let (owner, _) = app.owner().await;
    let invited = app
        .invite_and_join(&owner, "admin@example.com", "admin")
        .await;
    let created = app
        .create_user_via_api(&owner, "created@example.com", "admin")
        .await;

    for admin in [&invited, &created] {
        app.post(
            "/api/organization.updateMemberRole",
            json!({"memberId": admin.member_id, "role": "member"}),
            &owner,
        )
        .await
        .assert_ok();

        let p = app.get("/api/user.getPermissions", &[], &admin.who).await;

        let p = p.assert_ok();
        assert_eq!(p["role"], "member");
        let held: Vec<&str> = [
            "canCreateProjects",
            "canDeleteProjects",
            "canCreateEnvironments",
            "canDeleteEnvironments",
            "canCreateServices",
            "canDeleteServices",
            "canAccessToAPI",
        ]
        .into_iter()
        .filter(|f| p[*f] == true)
        .collect();
        assert!(
            held.is_empty(),
            "{} was demoted but still holds {held:?}",
            admin.email
        );
    }
}
