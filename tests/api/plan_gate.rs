//! The plan's gate (docs/api.md, "Plans, features and the gate"; docs/design.md
//! invariant 11): features checked by the opening statement, limits inside the
//! creating transaction, serialised per tenant, and 402 when the subscription is unpaid.

use serde_json::{Value, json};

use crate::helpers::{Tenant, TestApp, assert_problem, spawn_app, spawn_app_with};

/// A server whose new tenants start on the free plan.
async fn spawn_app_on_free() -> TestApp {
    spawn_app_with(|settings| settings.default_plan = "free".into()).await
}

/// Puts the tenant on `plan` (and `status`) directly, as the platform admin or a
/// renewal would: the gate reads the subscription on every request.
async fn set_subscription(app: &TestApp, tenant: &Tenant, plan: &str, status: &str) {
    app.db
        .superuser()
        .await
        .execute(
            "UPDATE subscriptions SET plan_code = $2, status = $3 WHERE tenant_id = $1::text::uuid",
            &[&tenant.id, &plan, &status],
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn an_operation_needing_a_feature_works_on_a_plan_with_it_and_is_refused_naming_it_on_one_without()
 {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let store = app.store(&acme.token, "Main").await;
    // Business has inventory.
    let allowed = app.inventory_list(&acme.token).in_store(&store).await;
    assert_eq!(allowed.status(), 200);

    // The next request sees the new plan: nothing in the token is about the plan.
    set_subscription(&app, &acme, "free", "active").await;
    let refused = app.inventory_list(&acme.token).in_store(&store).await;
    let body = assert_problem(refused, 403, "feature_not_in_plan").await;
    assert_eq!(body["feature"], "inventory");
    let adjust = app
        .inventory_adjust(
            &acme.token,
            &json!({"product_id": uuid::Uuid::new_v4(), "delta": 1, "reason": "count"}),
        )
        .in_store(&store)
        .await;
    assert_eq!(
        assert_problem(adjust, 403, "feature_not_in_plan").await["feature"],
        "inventory"
    );
    // What the plan does not gate still works.
    assert_eq!(app.stores_list(&acme.token).await.status(), 200);
}

#[tokio::test]
async fn the_audit_log_needs_a_plan_with_it() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    assert_eq!(app.audit_events_list(&acme.token).await.status(), 200);

    // Starter has inventory but no audit log.
    set_subscription(&app, &acme, "starter", "active").await;
    let refused = app.audit_events_list(&acme.token).await;
    let body = assert_problem(refused, 403, "feature_not_in_plan").await;
    assert_eq!(body["feature"], "audit_log");
    let store = app.store(&acme.token, "Main").await;
    assert_eq!(
        app.inventory_list(&acme.token)
            .in_store(&store)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn a_member_without_the_permission_is_refused_for_the_permission_whatever_the_plan() {
    let app = spawn_app_on_free().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let (_, staff) = app
        .member(&acme.token, "staff@acme.example", "Staff", None)
        .await;
    // Staff hold no audit.view: who may act is answered before what the plan includes.
    let refused = app.audit_events_list(&staff).await;
    assert_eq!(
        assert_problem(refused, 403, "forbidden").await["permission"],
        "audit.view"
    );
    let owner = app.audit_events_list(&acme.token).await;
    assert_eq!(
        assert_problem(owner, 403, "feature_not_in_plan").await["feature"],
        "audit_log"
    );
}

#[tokio::test]
async fn an_unpaid_subscription_answers_402_on_gated_operations_while_the_rest_still_answers() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let store = app.store(&acme.token, "Main").await;
    assert_eq!(
        app.inventory_list(&acme.token)
            .in_store(&store)
            .await
            .status(),
        200
    );

    set_subscription(&app, &acme, "business", "unpaid").await;
    // A feature's operations and the creation of limited things wait for payment...
    let gated = app.inventory_list(&acme.token).in_store(&store).await;
    assert_problem(gated, 402, "payment_required").await;
    let create = app
        .stores_create(&acme.token, &json!({"name": "Second"}))
        .await;
    assert_problem(create, 402, "payment_required").await;
    let product = app
        .products_create(
            &acme.token,
            &json!({"sku": "A-1", "name": "A", "price_cents": 100}),
        )
        .await;
    assert_problem(product, 402, "payment_required").await;
    // ... while the tenant can still see its subscription, its data and itself, and pay.
    assert_eq!(app.subscriptions_current(&acme.token).await.status(), 200);
    assert_eq!(app.stores_list(&acme.token).await.status(), 200);
    assert_eq!(app.products_list(&acme.token).await.status(), 200);
    assert_eq!(app.me_get(&acme.token).await.status(), 200);
    // Past due is still within the grace period: everything works.
    set_subscription(&app, &acme, "business", "past_due").await;
    assert_eq!(
        app.inventory_list(&acme.token)
            .in_store(&store)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn a_store_beyond_the_plans_limit_is_refused_with_the_limit_its_maximum_and_the_count() {
    let app = spawn_app_on_free().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    // Free allows one store.
    app.store(&acme.token, "Main").await;
    let refused = app
        .stores_create(&acme.token, &json!({"name": "Second"}))
        .await;
    let body = assert_problem(refused, 403, "limit_exceeded").await;
    assert_eq!(body["limit"], "stores");
    assert_eq!(body["max"], 1);
    assert_eq!(body["current"], 1);
    let stores: Value = app.stores_list(&acme.token).await.json().await.unwrap();
    assert_eq!(
        stores["items"].as_array().unwrap().len(),
        1,
        "nothing was written"
    );

    // Another tenant's stores do not count against Acme's, nor Acme's against it.
    let globex = app.tenant("owner@globex.example", "Globex").await;
    app.store(&globex.token, "Main").await;
    // A plan with more room lets Acme grow.
    set_subscription(&app, &acme, "starter", "active").await;
    app.store(&acme.token, "Second").await;
}

#[tokio::test]
async fn products_stop_at_the_plans_limit() {
    let app = spawn_app_on_free().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    // 99 of free's 100, written directly for speed.
    app.db
        .superuser()
        .await
        .execute(
            "INSERT INTO products (tenant_id, sku, name, price_cents)
             SELECT $1::text::uuid, 'SKU-' || n, 'Product ' || n, 100 FROM generate_series(1, 99) AS n",
            &[&acme.id],
        )
        .await
        .unwrap();
    app.product(&acme.token, "LAST").await;
    let refused = app
        .products_create(
            &acme.token,
            &json!({"sku": "ONE-MORE", "name": "One more", "price_cents": 100}),
        )
        .await;
    let body = assert_problem(refused, 403, "limit_exceeded").await;
    assert_eq!(
        (&body["limit"], &body["max"], &body["current"]),
        (&json!("products"), &json!(100), &json!(100))
    );
    // Deleting one makes room.
    let products: Value = app
        .products_list(&acme.token)
        .limit(1)
        .await
        .json()
        .await
        .unwrap();
    let id = products["items"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(app.products_delete(&acme.token, &id).await.status(), 204);
    app.product(&acme.token, "ONE-MORE").await;
}

#[tokio::test]
async fn pending_invitations_hold_seats_of_the_members_limit_until_revoked() {
    let app = spawn_app_on_free().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let staff = app.role_id(&acme.token, "Staff").await;
    let invite = |email: &str| {
        app.invitations_create(&acme.token, &json!({"email": email, "role_id": staff}))
    };
    // Free allows three members: the Owner and two invitations.
    assert_eq!(invite("one@acme.example").await.status(), 201);
    let second: Value = invite("two@acme.example").await.json().await.unwrap();
    let refused = invite("three@acme.example").await;
    let body = assert_problem(refused, 403, "limit_exceeded").await;
    assert_eq!(
        (&body["limit"], &body["max"], &body["current"]),
        (&json!("members"), &json!(3), &json!(3))
    );
    // Revoking an invitation gives its seat back.
    let revoked = app
        .invitations_delete(&acme.token, second["id"].as_str().unwrap())
        .await;
    assert_eq!(revoked.status(), 204);
    assert_eq!(invite("three@acme.example").await.status(), 201);
}

#[tokio::test]
async fn a_suspended_member_frees_a_seat_and_reactivating_them_needs_one() {
    let app = spawn_app_on_free().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let (member, _) = app
        .member(&acme.token, "staff@acme.example", "Staff", None)
        .await;
    let staff = app.role_id(&acme.token, "Staff").await;
    let suspend = app
        .users_update(&acme.token, &member, &json!({"status": "suspended"}))
        .await;
    assert_eq!(suspend.status(), 200);
    // Owner + two invitations: the three seats, the suspended member holding none.
    for email in ["one@acme.example", "two@acme.example"] {
        let invited = app
            .invitations_create(&acme.token, &json!({"email": email, "role_id": staff}))
            .await;
        assert_eq!(invited.status(), 201, "{email}");
    }
    let reactivate = app
        .users_update(&acme.token, &member, &json!({"status": "active"}))
        .await;
    let body = assert_problem(reactivate, 403, "limit_exceeded").await;
    assert_eq!(body["limit"], "members");
    let still: Value = app
        .users_get(&acme.token, &member)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(still["status"], "suspended", "nothing was written");
}

#[tokio::test]
async fn of_two_concurrent_creates_at_the_limit_exactly_one_succeeds() {
    let app = spawn_app_on_free().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    // Hold the tenant's subscription row, so that both requests are inside their
    // transactions, past the opening statement, waiting at the same point, before
    // either counts: the race is certain, not left to timing.
    let mut holder = app.db.superuser().await;
    let hold = holder.transaction().await.unwrap();
    hold.execute(
        "SELECT 1 FROM subscriptions WHERE tenant_id = $1::text::uuid FOR UPDATE",
        &[&acme.id],
    )
    .await
    .unwrap();
    let first = app
        .stores_create(&acme.token, &json!({"name": "East"}))
        .into_reqwest();
    let second = app
        .stores_create(&acme.token, &json!({"name": "West"}))
        .into_reqwest();
    let both = tokio::spawn(async move { tokio::join!(first.send(), second.send()) });
    // Both creates wait on the tenant's subscription.
    until_waiting_on_locks(&app, 2).await;
    hold.rollback().await.unwrap();
    let (first, second) = both.await.unwrap();
    let mut statuses = [
        first.unwrap().status().as_u16(),
        second.unwrap().status().as_u16(),
    ];
    statuses.sort_unstable();
    assert_eq!(statuses, [201, 403]);
    let stores: Value = app.stores_list(&acme.token).await.json().await.unwrap();
    assert_eq!(stores["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn creates_on_an_unlimited_plan_do_not_wait_for_each_other() {
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    // Business has no store limit: holding the subscription row blocks nothing.
    let mut holder = app.db.superuser().await;
    let hold = holder.transaction().await.unwrap();
    hold.execute(
        "SELECT 1 FROM subscriptions WHERE tenant_id = $1::text::uuid FOR UPDATE",
        &[&acme.id],
    )
    .await
    .unwrap();
    let created = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        app.stores_create(&acme.token, &json!({"name": "East"}))
            .into_reqwest()
            .send(),
    )
    .await
    .expect("not blocked by the lock")
    .unwrap();
    assert_eq!(created.status(), 201);
    hold.rollback().await.unwrap();
}

/// Waits until `count` backends of the test's database wait on a lock.
async fn until_waiting_on_locks(app: &TestApp, count: i64) {
    let observer = app.db.superuser().await;
    for _ in 0..400 {
        let waiting: i64 = observer
            .query_one(
                "SELECT count(*) FROM pg_stat_activity
                 WHERE wait_event_type = 'Lock' AND datname = current_database()",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if waiting == count {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("{count} backends never waited on a lock");
}

#[tokio::test]
async fn a_create_that_waited_for_a_plan_change_is_checked_against_the_new_plan() {
    let app = spawn_app_on_free().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    set_subscription(&app, &acme, "starter", "active").await;
    // Starter allows three stores: two, and room for one more.
    app.store(&acme.token, "One").await;
    app.store(&acme.token, "Two").await;
    // A downgrade to free (one store) is being written while a create arrives.
    let mut holder = app.db.superuser().await;
    let change = holder.transaction().await.unwrap();
    change
        .execute(
            "UPDATE subscriptions SET plan_code = 'free' WHERE tenant_id = $1::text::uuid",
            &[&acme.id],
        )
        .await
        .unwrap();
    let create = app
        .stores_create(&acme.token, &json!({"name": "Three"}))
        .into_reqwest();
    let created = tokio::spawn(create.send());
    until_waiting_on_locks(&app, 1).await;
    change.commit().await.unwrap();
    let refused = created.await.unwrap().unwrap();
    let body = assert_problem(refused, 403, "limit_exceeded").await;
    assert_eq!((&body["max"], &body["current"]), (&json!(1), &json!(2)));
}

#[tokio::test]
async fn reactivating_a_member_on_an_unpaid_subscription_waits_for_payment_and_suspending_does_not()
{
    let app = spawn_app().await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let (member, _) = app
        .member(&acme.token, "staff@acme.example", "Staff", None)
        .await;
    let suspend = json!({"status": "suspended"});
    let reactivate = json!({"status": "active"});
    // While paid, both ways work.
    assert_eq!(
        app.users_update(&acme.token, &member, &suspend)
            .await
            .status(),
        200
    );
    assert_eq!(
        app.users_update(&acme.token, &member, &reactivate)
            .await
            .status(),
        200
    );

    set_subscription(&app, &acme, "business", "unpaid").await;
    // Suspending frees a seat: never refused.
    assert_eq!(
        app.users_update(&acme.token, &member, &suspend)
            .await
            .status(),
        200
    );
    let refused = app.users_update(&acme.token, &member, &reactivate).await;
    assert_problem(refused, 402, "payment_required").await;
    let still: Value = app
        .users_get(&acme.token, &member)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(still["status"], "suspended");
}

#[tokio::test]
async fn an_acceptance_whose_invitation_expired_while_it_ran_is_refused_when_its_seat_was_taken() {
    // The acceptance is held for seconds: longer than the default statement timeout.
    let app = spawn_app_with(|settings| {
        settings.default_plan = "free".into();
        settings.statement_timeout_ms = 60_000;
    })
    .await;
    let acme = app.tenant("owner@acme.example", "Acme").await;
    let (suspended, _) = app
        .member(&acme.token, "first@acme.example", "Staff", None)
        .await;
    let suspend = json!({"status": "suspended"});
    assert_eq!(
        app.users_update(&acme.token, &suspended, &suspend)
            .await
            .status(),
        200
    );
    let staff = app.role_id(&acme.token, "Staff").await;
    // Owner, an active member and a pending invitation: free's three seats.
    app.member(&acme.token, "second@acme.example", "Staff", None)
        .await;
    let invited = app
        .invitations_create(
            &acme.token,
            &json!({"email": "third@acme.example", "role_id": staff}),
        )
        .await;
    assert_eq!(invited.status(), 201);
    let invitation: Value = invited.json().await.unwrap();
    let token = app.queued_token("third@acme.example", "invitation").await;
    let client = app.db.superuser().await;
    client
        .execute(
            "UPDATE invitations SET expires_at = now() + interval '6 seconds' WHERE id = $1::text::uuid",
            &[&invitation["id"].as_str().unwrap()],
        )
        .await
        .unwrap();
    // The acceptance begins before the invitation expires and is held at its last
    // step before it counts, until after the expiry.
    let mut holder = app.db.superuser().await;
    let hold = holder.transaction().await.unwrap();
    hold.execute(
        "SELECT 1 FROM invitations WHERE id = $1::text::uuid FOR UPDATE",
        &[&invitation["id"].as_str().unwrap()],
    )
    .await
    .unwrap();
    let accept = app
        .auth_accept_invitation(
            &json!({"token": token, "password": crate::helpers::PASSWORD, "full_name": "Third"}),
        )
        .into_reqwest();
    let accepted = tokio::spawn(accept.send());
    until_waiting_on_locks(&app, 1).await;
    let expired: bool = client
        .query_one(
            "SELECT expires_at > now() FROM invitations WHERE id = $1::text::uuid",
            &[&invitation["id"].as_str().unwrap()],
        )
        .await
        .unwrap()
        .get(0);
    assert!(
        expired,
        "the acceptance began before the invitation expired"
    );
    tokio::time::sleep(std::time::Duration::from_secs(7)).await;
    // Expired, the invitation holds no seat: the suspended member takes it back.
    let reactivate = json!({"status": "active"});
    assert_eq!(
        app.users_update(&acme.token, &suspended, &reactivate)
            .await
            .status(),
        200
    );
    hold.rollback().await.unwrap();
    let refused = accepted.await.unwrap().unwrap();
    let body = assert_problem(refused, 403, "limit_exceeded").await;
    assert_eq!(body["limit"], "members");
    let members: i64 = client
        .query_one(
            "SELECT count(*) FROM tenant_users WHERE tenant_id = $1::text::uuid AND status = 'active'",
            &[&acme.id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(members, 3, "the plan's three, not four");
}
