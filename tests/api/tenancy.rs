//! docs/api.md "Tenants" and "Users": the current tenant, members, invitations, and the
//! guards that keep a tenant an Owner.

use serde_json::json;

use crate::helpers::{
    PASSWORD, Tenant, assert_problem, retry_after, spawn_app, spawn_app_with, text,
};

#[tokio::test]
async fn the_current_tenant_can_be_read_and_renamed() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let tenant: serde_json::Value = app
        .tenants_get_current(&acme.token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(tenant["name"], "Acme");
    let renamed = app
        .tenants_update_current(&acme.token, &json!({"name": "Acme Corp"}))
        .await;
    assert_eq!(renamed.status(), 200);
    let renamed: serde_json::Value = renamed.json().await.unwrap();
    assert_eq!(renamed["name"], "Acme Corp");
    let blank = app
        .tenants_update_current(&acme.token, &json!({"name": "  "}))
        .await;
    assert_problem(blank, 422, "validation_failed").await;
}

#[tokio::test]
async fn an_operation_without_its_permission_answers_403_naming_it() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let (_, staff) = app
        .member(&acme.token, "staff@acme.example", "Staff", None)
        .await;
    let body = assert_problem(app.users_list(&staff).await, 403, "forbidden").await;
    assert_eq!(body["permission"], "users.view");
    let body = assert_problem(
        app.tenants_update_current(&staff, &json!({"name": "Mine"}))
            .await,
        403,
        "forbidden",
    )
    .await;
    assert_eq!(body["permission"], "tenants.edit");
}

#[tokio::test]
async fn members_are_listed_a_page_at_a_time() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    for n in 0..3 {
        app.member(&acme.token, &format!("m{n}@acme.example"), "Staff", None)
            .await;
    }
    let first: serde_json::Value = app
        .users_list(&acme.token)
        .limit(3)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(first["items"].as_array().unwrap().len(), 3);
    let cursor = text(&first, "next_cursor");
    let second: serde_json::Value = app
        .users_list(&acme.token)
        .limit(3)
        .cursor(&cursor)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(second["items"].as_array().unwrap().len(), 1);
    assert_eq!(second["next_cursor"], serde_json::Value::Null);
    let all: Vec<serde_json::Value> = [
        first["items"].as_array().unwrap().clone(),
        second["items"].as_array().unwrap().clone(),
    ]
    .concat();
    let mut emails: Vec<&str> = all.iter().map(|m| m["email"].as_str().unwrap()).collect();
    emails.sort();
    assert_eq!(
        emails,
        [
            "m0@acme.example",
            "m1@acme.example",
            "m2@acme.example",
            "owner@acme.example"
        ]
    );

    assert_problem(
        app.users_list(&acme.token).limit(0).await,
        400,
        "bad_request",
    )
    .await;
    assert_problem(
        app.users_list(&acme.token).limit(101).await,
        400,
        "bad_request",
    )
    .await;
    assert_problem(
        app.users_list(&acme.token).cursor("bogus").await,
        400,
        "bad_request",
    )
    .await;
}

#[tokio::test]
async fn a_suspended_member_is_locked_out_until_reactivated() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let (staff_id, staff) = app
        .member(&acme.token, "staff@acme.example", "Staff", None)
        .await;
    assert_eq!(app.me_get(&staff).await.status(), 200);
    let suspended = app
        .users_update(&acme.token, &staff_id, &json!({"status": "suspended"}))
        .await;
    assert_eq!(suspended.status(), 200);
    // Suspension ended the session the token belongs to; signing in again is refused
    // for what it is.
    assert_problem(app.me_get(&staff).await, 401, "unauthenticated").await;
    assert_problem(
        app.login("staff@acme.example", PASSWORD).await,
        403,
        "tenant_suspended",
    )
    .await;
    app.users_update(&acme.token, &staff_id, &json!({"status": "active"}))
        .await;
    let again = app.login_ok("staff@acme.example").await;
    assert_eq!(
        app.me_get(&text(&again, "access_token")).await.status(),
        200
    );
    let bad = app
        .users_update(&acme.token, &staff_id, &json!({"status": "banned"}))
        .await;
    assert_problem(bad, 422, "validation_failed").await;
}

#[tokio::test]
async fn a_reactivated_member_signs_in_again_and_their_old_refresh_token_stays_refused() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let (staff_id, _) = app
        .member(&acme.token, "staff@acme.example", "Staff", None)
        .await;
    // The session works while the member is active: it refreshes.
    let session = app.login_ok("staff@acme.example").await;
    let refreshed = app
        .auth_refresh(&json!({"refresh_token": session["refresh_token"]}))
        .await;
    assert_eq!(refreshed.status(), 200);
    let old: serde_json::Value = refreshed.json().await.unwrap();

    for status in ["suspended", "active"] {
        let changed = app
            .users_update(&acme.token, &staff_id, &json!({"status": status}))
            .await;
        assert_eq!(changed.status(), 200, "{status}");
    }
    // Reactivation gave access back, not the session taken before the suspension.
    let stale = app
        .auth_refresh(&json!({"refresh_token": old["refresh_token"]}))
        .await;
    assert_problem(stale, 401, "unauthenticated").await;
    assert_problem(
        app.me_get(&text(&old, "access_token")).await,
        401,
        "unauthenticated",
    )
    .await;
    let fresh = app.login_ok("staff@acme.example").await;
    assert_eq!(
        app.me_get(&text(&fresh, "access_token")).await.status(),
        200
    );
    let renewed = app
        .auth_refresh(&json!({"refresh_token": fresh["refresh_token"]}))
        .await;
    assert_eq!(renewed.status(), 200);
}

#[tokio::test]
async fn suspension_ends_the_members_sessions_in_that_tenant_only() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let grace = app.tenant("grace@other.example", "Grace's tenant").await;
    let staff_role = app.role_id(&acme.token, "Staff").await;
    app.invitations_create(
        &acme.token,
        &json!({"email": "grace@other.example", "role_id": staff_role}),
    )
    .await;
    let token = app.queued_token("grace@other.example", "invitation").await;
    let in_acme = app
        .auth_accept_invitation(&json!({"token": token, "password": PASSWORD}))
        .await;
    assert_eq!(in_acme.status(), 200);
    let in_acme: serde_json::Value = in_acme.json().await.unwrap();
    let at_home = app
        .auth_login(
            &json!({"email": "grace@other.example", "password": PASSWORD, "tenant_id": grace.id}),
        )
        .await;
    assert_eq!(at_home.status(), 200);
    let at_home: serde_json::Value = at_home.json().await.unwrap();

    let suspended = app
        .users_update(
            &acme.token,
            &grace.owner_id,
            &json!({"status": "suspended"}),
        )
        .await;
    assert_eq!(suspended.status(), 200);
    let ended = app
        .auth_refresh(&json!({"refresh_token": in_acme["refresh_token"]}))
        .await;
    assert_problem(ended, 401, "unauthenticated").await;
    // Her session in her own tenant is not Acme's to end.
    let kept = app
        .auth_refresh(&json!({"refresh_token": at_home["refresh_token"]}))
        .await;
    assert_eq!(kept.status(), 200);
}

#[tokio::test]
async fn a_removed_member_with_a_valid_token_is_refused_on_the_next_request() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let (staff_id, staff) = app
        .member(&acme.token, "staff@acme.example", "Staff", None)
        .await;
    assert_eq!(app.me_get(&staff).await.status(), 200);
    let removed = app.users_delete(&acme.token, &staff_id).await;
    assert_eq!(removed.status(), 204);
    assert_problem(app.me_get(&staff).await, 401, "unauthenticated").await;
    let again = app.users_delete(&acme.token, &staff_id).await;
    assert_problem(again, 404, "not_found").await;
}

#[tokio::test]
async fn the_last_owner_cannot_be_suspended_removed_or_demoted() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let owner = &acme.owner_id;
    let suspend = app
        .users_update(&acme.token, owner, &json!({"status": "suspended"}))
        .await;
    assert_problem(suspend, 409, "conflict").await;
    assert_problem(app.users_delete(&acme.token, owner).await, 409, "conflict").await;
    let roles: serde_json::Value = app
        .user_roles_list(&acme.token, owner)
        .await
        .json()
        .await
        .unwrap();
    let assignment = text(&roles["items"][0], "id");
    let demote = app.user_roles_delete(&acme.token, owner, &assignment).await;
    assert_problem(demote, 409, "conflict").await;
    assert_eq!(
        app.users_list(&acme.token).await.status(),
        200,
        "the Owner is untouched"
    );
}

#[tokio::test]
async fn of_two_concurrent_demotions_of_the_last_two_owners_one_fails() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let (second_id, second) = app
        .member(&acme.token, "second@acme.example", "Owner", None)
        .await;
    let assignment_of = |user: String| {
        let app = &app;
        let token = acme.token.clone();
        async move {
            let roles: serde_json::Value = app
                .user_roles_list(&token, &user)
                .await
                .json()
                .await
                .unwrap();
            text(&roles["items"][0], "id")
        }
    };
    let first_assignment = assignment_of(acme.owner_id.clone()).await;
    let second_assignment = assignment_of(second_id.clone()).await;
    // Each Owner demotes the other, at the same time.
    let (a, b) = tokio::join!(
        app.user_roles_delete(&acme.token, &second_id, &second_assignment),
        app.user_roles_delete(&second, &acme.owner_id, &first_assignment),
    );
    let mut statuses = [a.status().as_u16(), b.status().as_u16()];
    statuses.sort();
    assert!(
        statuses == [204, 409] || statuses == [204, 403],
        "{statuses:?}"
    );
    let owners: i64 = app
        .db
        .superuser()
        .await
        .query_one(
            "SELECT count(*) FROM user_roles ur JOIN roles r ON r.tenant_id = ur.tenant_id AND r.id = ur.role_id
             WHERE r.name = 'Owner'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(owners, 1, "exactly one Owner remains");
}

#[tokio::test]
async fn an_invitation_sends_its_token_by_email_and_creates_the_member_on_acceptance() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let staff_role = app.role_id(&acme.token, "Staff").await;
    let response = app
        .invitations_create(
            &acme.token,
            &json!({"email": " New@Acme.example ", "role_id": staff_role}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let invitation: serde_json::Value = response.json().await.unwrap();
    assert_eq!(invitation["email"], "new@acme.example");
    assert_eq!(invitation["role_id"], staff_role.as_str());
    assert!(invitation["expires_at"].is_string());
    assert!(
        invitation.get("token").is_none(),
        "the token is never in the response"
    );

    let token = app.queued_token("new@acme.example", "invitation").await;
    let incomplete = app.auth_accept_invitation(&json!({"token": token})).await;
    assert_problem(incomplete, 422, "validation_failed").await;
    let accepted = app
        .auth_accept_invitation(
            &json!({"token": token, "password": PASSWORD, "full_name": "New Person"}),
        )
        .await;
    assert_eq!(accepted.status(), 200);
    let accepted: serde_json::Value = accepted.json().await.unwrap();
    assert_eq!(accepted["tenant_id"], acme.id.as_str());
    let me: serde_json::Value = app
        .me_get(&text(&accepted, "access_token"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["roles"][0]["name"], "Staff");
    assert_eq!(app.login("new@acme.example", PASSWORD).await.status(), 200);

    let reused = app
        .auth_accept_invitation(&json!({"token": token, "password": PASSWORD, "full_name": "X"}))
        .await;
    assert_problem(reused, 401, "unauthenticated").await;
    let listed: serde_json::Value = app
        .invitations_list(&acme.token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["items"][0]["status"], "accepted");
}

#[tokio::test]
async fn an_existing_user_accepts_with_their_own_password_and_is_linked() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    app.register("grace@other.example", "Grace's tenant").await;
    let staff_role = app.role_id(&acme.token, "Staff").await;
    app.invitations_create(
        &acme.token,
        &json!({"email": "grace@other.example", "role_id": staff_role}),
    )
    .await;
    let token = app.queued_token("grace@other.example", "invitation").await;
    let wrong = app
        .auth_accept_invitation(&json!({"token": token, "password": "not her password"}))
        .await;
    assert_problem(wrong, 401, "invalid_credentials").await;
    let accepted = app
        .auth_accept_invitation(&json!({"token": token, "password": PASSWORD}))
        .await;
    assert_eq!(accepted.status(), 200);
    let accepted: serde_json::Value = accepted.json().await.unwrap();
    assert_eq!(accepted["tenant_id"], acme.id.as_str());
    let me: serde_json::Value = app
        .me_get(&text(&accepted, "access_token"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["memberships"].as_array().unwrap().len(), 2, "{me}");
}

#[tokio::test]
async fn an_accepted_invitation_does_not_tell_the_tenant_whether_the_email_had_an_account() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let grace = app.tenant("grace@other.example", "Grace's tenant").await;
    // One invitee already has an account, the other is new; both accept.
    let existing = invited(
        &app,
        &acme.token,
        &acme.token,
        "grace@other.example",
        "Staff",
    )
    .await;
    let accepted = app
        .auth_accept_invitation(&json!({"token": existing, "password": PASSWORD}))
        .await;
    assert_eq!(accepted.status(), 200);
    let (new_id, _) = app
        .member(&acme.token, "new@acme.example", "Staff", None)
        .await;

    let events: serde_json::Value = app
        .audit_events_list(&acme.token)
        .await
        .json()
        .await
        .unwrap();
    let details: Vec<&serde_json::Value> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| event["action"] == "invitation.accepted")
        .map(|event| &event["details"])
        .collect();
    // Newest first: the new user's acceptance, then the existing one's.
    assert_eq!(
        details,
        [
            &json!({"after": {"user_id": new_id}}),
            &json!({"after": {"user_id": grace.owner_id}}),
        ]
    );
}

#[tokio::test]
async fn an_existing_user_accepting_an_invitation_is_throttled_like_a_login() {
    let app = spawn_app_with(|settings| settings.login_max_failures_per_email = 3).await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let beta = app.tenant("owner@beta.example", "Beta").await;
    app.register("grace@other.example", "Grace's tenant").await;
    let invite = async |tenant: &Tenant| {
        let staff = app.role_id(&tenant.token, "Staff").await;
        let invited = app
            .invitations_create(
                &tenant.token,
                &json!({"email": "grace@other.example", "role_id": staff}),
            )
            .await;
        assert_eq!(invited.status(), 201);
        app.queued_token("grace@other.example", "invitation").await
    };
    let to_acme = invite(&acme).await;
    let accepted = app
        .auth_accept_invitation(&json!({"token": to_acme, "password": PASSWORD}))
        .await;
    assert_eq!(accepted.status(), 200);

    let to_beta = invite(&beta).await;
    for _ in 0..3 {
        let guess = app
            .auth_accept_invitation(&json!({"token": to_beta, "password": "a guess"}))
            .await;
        assert_problem(guess, 401, "invalid_credentials").await;
    }
    let right = app
        .auth_accept_invitation(&json!({"token": to_beta, "password": PASSWORD}))
        .await;
    assert!((1..=900).contains(&retry_after(&right)));
    assert_problem(right, 429, "rate_limited").await;
    // The guesses were failed logins of her email.
    assert_problem(
        app.login("grace@other.example", PASSWORD).await,
        429,
        "rate_limited",
    )
    .await;
    let listed: serde_json::Value = app
        .invitations_list(&beta.token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["items"][0]["status"], "pending");
}

#[tokio::test]
async fn accepting_an_invitation_into_a_suspended_tenant_is_refused_and_leaves_it_pending() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let staff = app.role_id(&acme.token, "Staff").await;
    app.invitations_create(
        &acme.token,
        &json!({"email": "new@acme.example", "role_id": staff}),
    )
    .await;
    let token = app.queued_token("new@acme.example", "invitation").await;
    let acceptance = json!({"token": token, "password": PASSWORD, "full_name": "New Person"});
    let superuser = app.db.superuser().await;
    let set_status = async |status: &str| {
        superuser
            .execute(
                "UPDATE tenants SET status = $1 WHERE id = $2::text::uuid",
                &[&status, &acme.id],
            )
            .await
            .unwrap();
    };
    set_status("suspended").await;
    let refused = app.auth_accept_invitation(&acceptance).await;
    assert_problem(refused, 403, "tenant_suspended").await;
    let (pending, users): (bool, i64) = {
        let row = superuser
            .query_one(
                "SELECT (SELECT accepted_at IS NULL FROM invitations WHERE email = 'new@acme.example'),
                        (SELECT count(*) FROM users WHERE email = 'new@acme.example')",
                &[],
            )
            .await
            .unwrap();
        (row.get(0), row.get(1))
    };
    assert!(pending, "the invitation is still pending");
    assert_eq!(users, 0, "no account was made");
    // Active again: the same invitation works.
    set_status("active").await;
    assert_eq!(app.auth_accept_invitation(&acceptance).await.status(), 200);
}

#[tokio::test]
async fn inviting_a_member_or_an_already_invited_email_answers_409() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let staff_role = app.role_id(&acme.token, "Staff").await;
    let member = app
        .invitations_create(
            &acme.token,
            &json!({"email": "owner@acme.example", "role_id": staff_role}),
        )
        .await;
    assert_problem(member, 409, "conflict").await;
    let body = json!({"email": "new@acme.example", "role_id": staff_role});
    assert_eq!(
        app.invitations_create(&acme.token, &body).await.status(),
        201
    );
    assert_problem(
        app.invitations_create(&acme.token, &body).await,
        409,
        "conflict",
    )
    .await;
    let bad = app
        .invitations_create(
            &acme.token,
            &json!({"email": "nope", "role_id": staff_role}),
        )
        .await;
    assert_problem(bad, 422, "validation_failed").await;
    let no_role = app
        .invitations_create(
            &acme.token,
            &json!({"email": "x@acme.example", "role_id": uuid::Uuid::new_v4()}),
        )
        .await;
    assert_problem(no_role, 422, "validation_failed").await;
}

#[tokio::test]
async fn a_revoked_or_expired_invitation_cannot_be_accepted() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let staff_role = app.role_id(&acme.token, "Staff").await;
    let created: serde_json::Value = app
        .invitations_create(
            &acme.token,
            &json!({"email": "late@acme.example", "role_id": staff_role}),
        )
        .await
        .json()
        .await
        .unwrap();
    let token = app.queued_token("late@acme.example", "invitation").await;
    assert_eq!(
        app.invitations_delete(&acme.token, text(&created, "id"))
            .await
            .status(),
        204
    );
    let accept = json!({"token": token, "password": PASSWORD, "full_name": "Late"});
    assert_problem(
        app.auth_accept_invitation(&accept).await,
        401,
        "unauthenticated",
    )
    .await;

    app.invitations_create(
        &acme.token,
        &json!({"email": "later@acme.example", "role_id": staff_role}),
    )
    .await;
    let token = app.queued_token("later@acme.example", "invitation").await;
    app.db
        .superuser()
        .await
        .batch_execute("UPDATE invitations SET expires_at = now() - interval '1 second'")
        .await
        .unwrap();
    let accept = json!({"token": token, "password": PASSWORD, "full_name": "Later"});
    assert_problem(
        app.auth_accept_invitation(&accept).await,
        401,
        "unauthenticated",
    )
    .await;
    let garbage = json!({"token": "garbage", "password": PASSWORD, "full_name": "X"});
    assert_problem(
        app.auth_accept_invitation(&garbage).await,
        401,
        "unauthenticated",
    )
    .await;
}

#[tokio::test]
async fn nobody_invites_with_a_role_holding_permissions_they_lack() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let (_, admin) = app
        .member(&acme.token, "admin@acme.example", "Admin", None)
        .await;
    let staff_role = app.role_id(&acme.token, "Staff").await;
    let allowed = app
        .invitations_create(
            &admin,
            &json!({"email": "clerk@acme.example", "role_id": staff_role}),
        )
        .await;
    assert_eq!(
        allowed.status(),
        201,
        "the Admin may invite with a role it outranks"
    );
    let owner_role = app.role_id(&acme.token, "Owner").await;
    let response = app
        .invitations_create(
            &admin,
            &json!({"email": "coup@acme.example", "role_id": owner_role}),
        )
        .await;
    let body = assert_problem(response, 403, "forbidden").await;
    assert_eq!(body["permission"], "tenants.delete");
}

#[tokio::test]
async fn an_admin_cannot_suspend_or_remove_an_owner() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let (second_owner, _) = app
        .member(&acme.token, "second@acme.example", "Owner", None)
        .await;
    let (staff, _) = app
        .member(&acme.token, "staff@acme.example", "Staff", None)
        .await;
    let (_, admin) = app
        .member(&acme.token, "admin@acme.example", "Admin", None)
        .await;
    let suspend = app
        .users_update(&admin, &second_owner, &json!({"status": "suspended"}))
        .await;
    assert_eq!(
        assert_problem(suspend, 403, "forbidden").await["permission"],
        "tenants.delete"
    );
    let remove = app.users_delete(&admin, &second_owner).await;
    assert_eq!(
        assert_problem(remove, 403, "forbidden").await["permission"],
        "tenants.delete"
    );
    // Whom the Admin outranks, the Admin may remove.
    assert_eq!(app.users_delete(&admin, &staff).await.status(), 204);
}

#[tokio::test]
async fn a_removed_member_keeps_no_session_when_invited_back() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    app.member(&acme.token, "staff@acme.example", "Staff", None)
        .await;
    let old = app.login_ok("staff@acme.example").await;
    let me: serde_json::Value = app
        .me_get(&text(&old, "access_token"))
        .await
        .json()
        .await
        .unwrap();
    let staff_id = text(&me["user"], "id");
    app.users_delete(&acme.token, &staff_id).await;

    let staff_role = app.role_id(&acme.token, "Staff").await;
    app.invitations_create(
        &acme.token,
        &json!({"email": "staff@acme.example", "role_id": staff_role}),
    )
    .await;
    let token = app.queued_token("staff@acme.example", "invitation").await;
    let accepted = app
        .auth_accept_invitation(&json!({"token": token, "password": PASSWORD}))
        .await;
    assert_eq!(accepted.status(), 200);
    let stale = app
        .auth_refresh(&json!({"refresh_token": old["refresh_token"]}))
        .await;
    assert_problem(stale, 401, "unauthenticated").await;
}

#[tokio::test]
async fn a_revoked_invitation_leaves_the_default_invitation_list() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let role = app.role_id(&acme.token, "Staff").await;
    let body = json!({"email": "new@acme.example", "role_id": role});
    let created = app.invitations_create(&acme.token, &body).await;
    assert_eq!(created.status(), 201);
    let id = text(&created.json().await.unwrap(), "id");
    let ids = |list: serde_json::Value| -> Vec<String> {
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| text(i, "id"))
            .collect()
    };
    let listed = app
        .invitations_list(&acme.token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(ids(listed), std::slice::from_ref(&id));

    assert_eq!(app.invitations_delete(&acme.token, &id).await.status(), 204);
    let listed = app
        .invitations_list(&acme.token)
        .await
        .json()
        .await
        .unwrap();
    assert!(
        ids(listed).is_empty(),
        "a revoked invitation is still listed"
    );
    let revoked: serde_json::Value = app
        .invitations_list(&acme.token)
        .query("status", "revoked")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(revoked["items"][0]["status"], "revoked");
    assert_eq!(ids(revoked), [id]);
}

/// Invites `email` as `role` with `inviter`'s token; returns the invitation's token.
async fn invited(
    app: &crate::helpers::TestApp,
    owner: &str,
    inviter: &str,
    email: &str,
    role: &str,
) -> String {
    let role_id = app.role_id(owner, role).await;
    let created = app
        .invitations_create(inviter, &json!({"email": email, "role_id": role_id}))
        .await;
    assert_eq!(created.status(), 201, "inviting {email}");
    app.queued_token(email, "invitation").await
}

fn acceptance(token: &str) -> serde_json::Value {
    json!({"token": token, "password": PASSWORD, "full_name": "New Member"})
}

#[tokio::test]
async fn an_invitation_does_not_outlive_its_inviters_access() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let (removed_id, removed) = app
        .member(&acme.token, "a@acme.example", "Admin", None)
        .await;
    let (suspended_id, suspended) = app
        .member(&acme.token, "b@acme.example", "Admin", None)
        .await;
    let first = invited(&app, &acme.token, &removed, "x@acme.example", "Staff").await;
    let second = invited(&app, &acme.token, &removed, "y@acme.example", "Staff").await;
    let third = invited(&app, &acme.token, &suspended, "z@acme.example", "Staff").await;
    // While the inviter is there, an invitation works.
    assert_eq!(
        app.auth_accept_invitation(&acceptance(&first))
            .await
            .status(),
        200
    );
    assert_eq!(
        app.users_delete(&acme.token, &removed_id).await.status(),
        204
    );
    let suspend = json!({"status": "suspended"});
    assert_eq!(
        app.users_update(&acme.token, &suspended_id, &suspend)
            .await
            .status(),
        200
    );
    for token in [second, third] {
        let refused = app.auth_accept_invitation(&acceptance(&token)).await;
        assert_problem(refused, 401, "unauthenticated").await;
    }
}

#[tokio::test]
async fn an_invitation_is_void_once_its_inviter_no_longer_holds_the_role() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let (admin_id, admin) = app
        .member(&acme.token, "a@acme.example", "Admin", None)
        .await;
    let accepted = invited(&app, &acme.token, &admin, "x@acme.example", "Admin").await;
    let voided = invited(&app, &acme.token, &admin, "y@acme.example", "Admin").await;
    // While the inviter is an Admin, an Admin invitation works.
    assert_eq!(
        app.auth_accept_invitation(&acceptance(&accepted))
            .await
            .status(),
        200
    );
    // Demoted to Staff: they could no longer issue it.
    let assignments: serde_json::Value = app
        .user_roles_list(&acme.token, &admin_id)
        .await
        .json()
        .await
        .unwrap();
    let assignment = text(&assignments["items"][0], "id");
    let staff = app.role_id(&acme.token, "Staff").await;
    let demoted = app
        .user_roles_create(&acme.token, &admin_id, &json!({"role_id": staff}))
        .await;
    assert_eq!(demoted.status(), 201);
    let removed = app
        .user_roles_delete(&acme.token, &admin_id, &assignment)
        .await;
    assert_eq!(removed.status(), 204);
    let refused = app.auth_accept_invitation(&acceptance(&voided)).await;
    assert_problem(refused, 401, "unauthenticated").await;
}
