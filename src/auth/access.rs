//! Authorization of a request, in the round trip that opens its transaction: the
//! verified token says who and in which tenant; `app.begin_request` says whether that
//! still holds (tenant active, membership active), whether the store named by
//! `X-Store-ID` is reachable, and whether the operation's permission is held. A
//! removed or suspended member is refused on their next request, not when their token
//! expires.

use uuid::Uuid;

use super::AccessClaims;
use crate::{
    db::{Access, Database, RequestTx, Scope},
    error::Error,
};

/// Opens the request transaction for an authenticated caller, or refuses.
pub async fn authorize(
    db: &Database,
    claims: &AccessClaims,
    store_id: Option<Uuid>,
    permission: Option<&'static str>,
) -> Result<(RequestTx, Access), Error> {
    let scope = Scope {
        tenant_id: Some(claims.tid),
        user_id: Some(claims.sub),
        store_id,
        permission,
    };
    let (tx, access) = db.begin(&scope).await?;
    match refusal(&access, store_id, permission) {
        None => Ok((tx, access)),
        Some(error) => {
            tx.rollback().await;
            Err(error)
        }
    }
}

fn refusal(
    access: &Access,
    store_id: Option<Uuid>,
    permission: Option<&'static str>,
) -> Option<Error> {
    match access.member_status.as_deref() {
        // Removed from the tenant (or the tenant is gone): the token no longer holds.
        None => return Some(Error::Unauthenticated),
        Some("active") if access.tenant_active => {}
        Some(_) => return Some(Error::TenantSuspended),
    }
    if store_id.is_some() && !access.store_accessible {
        return Some(Error::StoreAccessDenied);
    }
    match permission {
        Some(permission) if !access.permission_granted => Some(Error::Forbidden {
            permission: permission.to_string(),
        }),
        _ => None,
    }
}
