//! Tests of the correct behaviour where the code is known to be wrong. Each test names
//! the function at fault; they fail until it is fixed.

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
