//! The rules of tenancy, where a test can call them: who may suspend or remove a
//! member (someone holding every permission the member holds), that a tenant keeps an
//! active Owner through both, who may be invited with which role, and how an
//! invitation is accepted (a flow of several transactions, with identity).

use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

use super::db::{self, InvitationRow, InvitationStatus, MemberRow, MemberStatus, TenantRow};
use crate::{
    error::Error,
    modules::{
        audit::{self, Action, Event, Target},
        identity::service::{Identity, Session},
        notifications, rbac,
    },
    platform::{
        auth::OpaqueToken,
        db::{Access, RequestTx, Scope},
        domain::{Email, Fields, Name, Password},
        http::common::wire_name,
    },
};

fn required(value: Option<&str>) -> Result<&str, String> {
    value.ok_or_else(|| "is required for a new account".to_string())
}

const BAD_INVITATION_TOKEN: Error =
    Error::InvalidToken("the invitation token is invalid, expired, revoked or already used");

/// Invitations expire after 7 days.
const INVITATION_TTL: chrono::Duration = chrono::Duration::days(7);

pub async fn rename_tenant(tx: &RequestTx, id: Uuid, name: &Name) -> Result<TenantRow, Error> {
    let before = db::tenant(tx, id).await?;
    let tenant = db::rename_tenant(tx, id, name.as_str()).await?;
    audit::record(
        tx,
        Event {
            action: Action::TenantUpdated,
            target_type: Target::Tenant,
            target_id: Some(tenant.id),
            store_id: None,
            details: json!({"before": {"name": before.name}, "after": {"name": tenant.name}}),
        },
    )
    .await?;
    Ok(tenant)
}

/// Suspends or reactivates a member. Suspending someone takes their permissions away:
/// only someone who holds them all may (an Admin cannot suspend an Owner), and the last
/// active Owner cannot be suspended (409). Suspension ends the member's sessions in
/// this tenant, as removal does: reactivation gives access back, not the sessions, so
/// a refresh token from before the suspension stays dead and the member signs in again.
pub async fn set_member_status(
    identity: &Identity,
    tx: &RequestTx,
    access: &Access,
    user_id: Uuid,
    status: MemberStatus,
) -> Result<MemberRow, Error> {
    rbac::service::lock_owners(tx).await?;
    let before = db::member(tx, user_id).await?;
    rbac::service::ensure_holds_all_of(tx, access, user_id).await?;
    db::set_member_status(tx, user_id, &wire_name(&status)).await?;
    if status == MemberStatus::Suspended {
        // Neither their sessions nor what they issued outlive their access.
        identity.end_member_sessions(tx, user_id).await?;
        db::revoke_invitations_by(tx, user_id).await?;
    }
    rbac::service::ensure_an_owner_remains(tx).await?;
    audit::record(
        tx,
        Event {
            action: Action::MemberUpdated,
            target_type: Target::User,
            target_id: Some(user_id),
            store_id: None,
            details: json!({"before": {"status": before.status}, "after": {"status": status}}),
        },
    )
    .await?;
    db::member(tx, user_id).await
}

/// Removes a member with their roles and store links, and ends their sessions in this
/// tenant. As for suspension: only someone holding all their permissions, and never
/// the last active Owner (409).
pub async fn remove_member(
    identity: &Identity,
    tx: &RequestTx,
    access: &Access,
    user_id: Uuid,
) -> Result<(), Error> {
    rbac::service::lock_owners(tx).await?;
    let before = db::member(tx, user_id).await?;
    rbac::service::ensure_holds_all_of(tx, access, user_id).await?;
    db::remove_member(tx, user_id).await?;
    db::revoke_invitations_by(tx, user_id).await?;
    identity.end_member_sessions(tx, user_id).await?;
    rbac::service::ensure_an_owner_remains(tx).await?;
    audit::record(
        tx,
        Event {
            action: Action::MemberRemoved,
            target_type: Target::User,
            target_id: Some(user_id),
            store_id: None,
            details: json!({"before": {"email": before.email, "status": before.status}}),
        },
    )
    .await
}

/// Who is invited, with which role, where.
pub struct NewInvitation {
    pub email: Email,
    pub role_id: Uuid,
    pub store_id: Option<Uuid>,
}

/// Invites someone by email (7 days, single use): the role must exist and be held
/// entirely by the inviter; 409 when the email is already a member or has a pending
/// invitation. The token travels by email, never in the answer.
pub async fn invite(
    tx: &RequestTx,
    access: &Access,
    inviter: Uuid,
    invitation: NewInvitation,
    now: DateTime<Utc>,
) -> Result<InvitationRow, Error> {
    let NewInvitation {
        email,
        role_id,
        store_id,
    } = invitation;
    let role = rbac::service::grantable_role(tx, access, role_id, store_id).await?;
    if db::is_member_email(tx, email.as_str()).await? {
        return Err(Error::Conflict("already a member of this tenant".into()));
    }
    if db::has_pending_invitation(tx, email.as_str()).await? {
        return Err(Error::Conflict(
            "a pending invitation exists for this email".into(),
        ));
    }
    let expires_at = now + INVITATION_TTL;
    let created =
        db::create_invitation(tx, email.as_str(), role.id, store_id, inviter, expires_at).await?;
    let token = OpaqueToken::generate();
    db::set_invitation_token(tx, created.id, &token.hash).await?;
    // Its recipient and text come from the invitation itself (the function checks the
    // token against the hash just stored).
    if !db::send_invitation_email(tx, created.id, &token.token).await? {
        return Err(Error::Internal(anyhow::anyhow!(
            "the invitation just created has no email to send"
        )));
    }
    audit::record(
        tx,
        Event {
            action: Action::InvitationCreated,
            target_type: Target::Invitation,
            target_id: Some(created.id),
            store_id,
            details: json!({"after": {"email": created.email, "role_id": role.id, "role": role.name}}),
        },
    )
    .await?;
    Ok(created)
}

/// Revokes an invitation that was not accepted.
pub async fn revoke_invitation(tx: &RequestTx, id: Uuid) -> Result<(), Error> {
    let invitation = db::revoke_invitation(tx, id).await?;
    audit::record(
        tx,
        Event {
            action: Action::InvitationRevoked,
            target_type: Target::Invitation,
            target_id: Some(invitation.id),
            store_id: invitation.store_id,
            details: json!({"before": {"email": invitation.email}}),
        },
    )
    .await
}

/// Accepts an invitation (`POST /api/v1/auth/accept-invitation`): creates the user
/// when the email is new (password and full name required), or links the existing
/// user, who proves it with their own password, under the login throttle of their
/// email and `client` (a wrong password is a failed login; 429 before verifying
/// while they are locked). 401 for a bad, expired, revoked or used token; 403
/// `tenant_suspended` while the tenant is suspended, asked before any password is
/// hashed or verified and again where the invitation is used up, so that it stays
/// pending. Passwords are hashed between transactions, never holding a connection.
pub async fn accept_invitation(
    identity: &Identity,
    token: &str,
    password: Option<&str>,
    full_name: Option<&str>,
    client: &str,
) -> Result<Session, Error> {
    if !OpaqueToken::looks_valid(token) {
        return Err(BAD_INVITATION_TOKEN);
    }
    let token_hash = OpaqueToken::hash_of(token);
    // A credential flow (it reads a password hash and starts a session): the
    // credentials' pool, as rowguard_auth.
    let (tx, _) = identity.credentials.begin(&Scope::anonymous()).await?;
    let found = async {
        let Some(invitation) = db::invitation_for_token(&tx, &token_hash).await? else {
            return Err(BAD_INVITATION_TOKEN);
        };
        if invitation.status != wire_name(&InvitationStatus::Pending) {
            return Err(BAD_INVITATION_TOKEN);
        }
        if !db::invitation_tenant_active(&tx, &token_hash).await? {
            return Err(Error::TenantSuspended);
        }
        let existing = match db::invitation_account(&tx, &token_hash).await? {
            Some(user) => {
                let check = identity
                    .begin_password_check(&tx, &invitation.email, client)
                    .await?;
                Some((user, check))
            }
            None => None,
        };
        Ok((invitation, existing))
    }
    .await;
    // Committed before verifying: the attempt counts as a failure until it passes.
    let (invitation, existing) = tx.finish(found).await?;

    // Who accepts: an existing user proves it with their own password; a new one
    // chooses a password and gives their name.
    let (user_id, new_user, check) = match existing {
        Some((user, check)) => {
            let verified = identity
                .hasher
                .verify(password.unwrap_or_default(), user.password_hash.as_deref())
                .await?;
            if !verified || user.status != "active" {
                return Err(Error::InvalidCredentials);
            }
            (user.user_id, None, Some(check))
        }
        None => {
            let email = Email::parse(&invitation.email).ok();
            let mut fields = Fields::new();
            let password = fields.check(
                "password",
                required(password).and_then(|p| Password::parse(p, email.as_ref())),
            );
            let name = fields.check("full_name", required(full_name).and_then(Name::parse));
            let (password, name) = fields.finish((password, name))?;
            let hash = identity
                .hasher
                .hash_unauthenticated(password.expose())
                .await?;
            (Uuid::new_v4(), Some((name, hash)), None)
        }
    };

    let (tx, access) = identity
        .credentials
        .begin(&Scope::tenant(invitation.tenant_id, user_id))
        .await?;
    let session = async {
        // Suspended meanwhile: refused, and the invitation stays pending.
        if !access.tenant_active {
            return Err(Error::TenantSuspended);
        }
        if let Some(check) = &check {
            identity.password_check_passed(&tx, check).await?;
        }
        if let Some((name, hash)) = &new_user {
            identity
                .create_user(&tx, user_id, &invitation.email, name, hash)
                .await?;
        }
        // The invitation holds only while its issuer could still issue it: an active
        // member holding users.invite and every permission of the role (demoted,
        // suspended or removed since, and it is void).
        let Some(inviter) = db::inviter_of(&tx, invitation.invitation_id).await? else {
            return Err(BAD_INVITATION_TOKEN);
        };
        if !rbac::service::could_still_invite_with(&tx, inviter, invitation.role_id).await? {
            return Err(BAD_INVITATION_TOKEN);
        }
        // Only one acceptance wins, even when two race with the same token.
        if !db::mark_invitation_accepted(&tx, invitation.invitation_id).await? {
            return Err(BAD_INVITATION_TOKEN);
        }
        db::add_member(&tx, user_id).await?;
        // The invitation held a seat when this transaction began; if it expired since,
        // that seat may have been taken meanwhile (a member reactivated).
        db::members_within_plan(&tx).await?;
        rbac::service::assign_role(&tx, user_id, invitation.role_id, invitation.store_id).await?;
        audit::record(
            &tx,
            Event {
                action: Action::InvitationAccepted,
                target_type: Target::Invitation,
                target_id: Some(invitation.invitation_id),
                store_id: invitation.store_id,
                // Whether the email already had an account is the invitee's to tell, not
                // the inviting tenant's: the event reads the same either way.
                details: json!({"after": {"user_id": user_id}}),
            },
        )
        .await?;
        // The inviter is told in the same transaction: only an acceptance that holds
        // notifies. Like the audit event, it does not say whether the email already had
        // an account.
        let tenant = db::tenant(&tx, invitation.tenant_id).await?;
        notifications::notify(
            &tx,
            inviter,
            "invitation.accepted",
            "Your invitation was accepted",
            &format!("{} accepted your invitation and joined.", invitation.email),
            &json!({
                "invitation_id": invitation.invitation_id,
                "user_id": user_id,
                "invitee_email": invitation.email,
                "tenant_name": tenant.name,
            }),
        )
        .await?;
        identity
            .start_session(&tx, user_id, invitation.tenant_id)
            .await
    }
    .await;
    tx.finish(session).await
}
