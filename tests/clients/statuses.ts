// What a TypeScript client generated from rowguard's OpenAPI document must be able to
// rely on: every closed set (a status, a problem's code) is a union of string literals,
// not `string`, and a problem always has a `detail`. check.sh generates
// generated/rowguard.d.ts with openapi-typescript, then runs `tsc --noEmit --strict`
// on this file. Nothing here runs: it only has to type-check.
//
// Two kinds of check, so a failure says what is wrong:
// - `type X = Assert<Equal<A, B>>` fails with "Type 'false' does not satisfy the
//   constraint 'true'" when A is not exactly B (say `string`, or a union missing a value);
// - a line under `// @ts-expect-error` must NOT type-check; when it does (a plain
//   `string` accepts "bogus"), tsc reports "Unused '@ts-expect-error' directive".
// A schema that is missing (still named `...Dto`, say) is reported at its alias below.

import type { components, paths } from "./generated/rowguard";

type Schemas = components["schemas"];

/** true when A and B are the same type (not merely assignable either way). */
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
type Assert<T extends true> = T;
/** true when every member of Sub is in Super. */
type Includes<Super, Sub> = [Sub] extends [Super] ? true : false;
/** true when K is a required (non-optional) property of O. */
type IsRequired<O, K extends keyof O> = {} extends Pick<O, K> ? false : true;
/** The body of a response or request object, whatever its media type. */
type Body<R> = R extends { content: infer C } ? C[keyof C] : never;

// --- Stores: `active` or `archived` (stores.status CHECK in sql/V1__core_model.sql).
type StoreStatus = Schemas["Store"]["status"];
type StoreStatusIsActiveOrArchived = Assert<Equal<StoreStatus, "active" | "archived">>;
export const storeStatuses: StoreStatus[] = ["active", "archived"];
// @ts-expect-error "bogus" is not a store status
export const storeBogus: StoreStatus = "bogus";

type StoreUpdateStatus = NonNullable<Schemas["UpdateStoreRequest"]["status"]>;
type StoreUpdateStatusIsActiveOrArchived = Assert<Equal<StoreUpdateStatus, "active" | "archived">>;
// @ts-expect-error a client cannot set a store to "bogus"
export const storeUpdateBogus: Schemas["UpdateStoreRequest"] = { status: "bogus" };

// --- Members of a tenant: `active` or `suspended` (tenant_users.status CHECK).
type MemberStatus = Schemas["Member"]["status"];
type MemberStatusIsActiveOrSuspended = Assert<Equal<MemberStatus, "active" | "suspended">>;
export const memberStatuses: MemberStatus[] = ["active", "suspended"];
// @ts-expect-error "bogus" is not a member status
export const memberBogus: MemberStatus = "bogus";

type MemberUpdateStatus = Schemas["UpdateMemberRequest"]["status"];
type MemberUpdateStatusIsActiveOrSuspended = Assert<Equal<MemberUpdateStatus, "active" | "suspended">>;
// @ts-expect-error a client cannot set a member to "bogus"
export const memberUpdateBogus: Schemas["UpdateMemberRequest"] = { status: "bogus" };

// --- A caller's memberships (GET /me): the member's status, `suspended` also when the
// tenant is.
type MembershipStatus = Schemas["Membership"]["status"];
type MembershipStatusIsActiveOrSuspended = Assert<Equal<MembershipStatus, "active" | "suspended">>;
// @ts-expect-error "bogus" is not a membership status
export const membershipBogus: MembershipStatus = "bogus";

// --- Invitations: derived in tenancy/db.rs from accepted_at, revoked_at, expires_at.
type InvitationStatus = Schemas["Invitation"]["status"];
type InvitationStatusIsOneOfFour = Assert<
    Equal<InvitationStatus, "pending" | "accepted" | "revoked" | "expired">
>;
export const invitationStatuses: InvitationStatus[] = ["pending", "accepted", "revoked", "expired"];
// @ts-expect-error "bogus" is not an invitation status
export const invitationBogus: InvitationStatus = "bogus";

// --- Tenants: `active`, `suspended` or `deleted` (tenants.status CHECK, V19).
type TenantStatus = Schemas["Tenant"]["status"];
type TenantStatusIsActiveSuspendedOrDeleted = Assert<
  Equal<TenantStatus, "active" | "suspended" | "deleted">
>;
export const tenantStatuses: TenantStatus[] = ["active", "suspended", "deleted"];
// @ts-expect-error "bogus" is not a tenant status
export const tenantBogus: TenantStatus = "bogus";

// --- A user's own account (GET /me `user`): `active` or `disabled` (users.status CHECK;
// not the same set as a member's).
type UserStatus = Schemas["User"]["status"];
type UserStatusIsActiveOrDisabled = Assert<Equal<UserStatus, "active" | "disabled">>;
// @ts-expect-error "bogus" is not a user status
export const userBogus: UserStatus = "bogus";

// --- Problems (src/platform/http/problem.rs): `code` is what clients switch on. Every
// code the server sends today must be in the union; later modules may add more, so this
// checks inclusion, and that the union is closed ("bogus" is rejected).
type ProblemCode = Schemas["Problem"]["code"];
type KnownProblemCode =
    | "bad_request"
    | "unauthenticated"
    | "token_expired"
    | "invalid_credentials"
    | "forbidden"
    | "store_access_denied"
    | "tenant_suspended"
    | "registration_disabled"
    | "not_found"
    | "method_not_allowed"
    | "conflict"
    | "bootstrap_closed"
    | "payload_too_large"
    | "unsupported_media_type"
    | "validation_failed"
    | "rate_limited"
    | "internal"
    | "unavailable";
type ProblemCodeHasEveryKnownCode = Assert<Includes<ProblemCode, KnownProblemCode>>;
type ProblemCodeIsNotString = Assert<Equal<Includes<ProblemCode, string>, false>>;
// @ts-expect-error "bogus" is not a problem code
export const problemBogus: ProblemCode = "bogus";

// `detail` is always there, a string: required, not optional, not nullable.
type ProblemDetailIsString = Assert<Equal<Schemas["Problem"]["detail"], string>>;
type ProblemDetailIsRequired = Assert<IsRequired<Schemas["Problem"], "detail">>;
// @ts-expect-error a problem without `detail` is not a problem
export const problemWithoutDetail: Schemas["Problem"] = {
    type: "about:blank",
    title: "Not Found",
    status: 404,
    code: "not_found",
};
export const problemNotFound: Schemas["Problem"] = {
    type: "about:blank",
    title: "Not Found",
    status: 404,
    code: "not_found",
    detail: "no such store",
};

// --- The operations hand out these schemas, not inline copies with plain strings.
type StoresGet = paths["/api/v1/stores/{id}"]["get"];
type StoresGetReturnsStore = Assert<Equal<Body<StoresGet["responses"][200]>, Schemas["Store"]>>;
type StoresGet404IsProblem = Assert<Equal<Body<StoresGet["responses"][404]>, Schemas["Problem"]>>;
type StoresListItemsAreStores = Assert<
    Equal<Body<paths["/api/v1/stores"]["get"]["responses"][200]>["items"][number], Schemas["Store"]>
>;
type StoresUpdateBody = Body<NonNullable<paths["/api/v1/stores/{id}"]["patch"]["requestBody"]>>;
type StoresUpdateTakesUpdateStoreRequest = Assert<Equal<StoresUpdateBody, Schemas["UpdateStoreRequest"]>>;
type InvitationsListItemsAreInvitations = Assert<
    Equal<Body<paths["/api/v1/invitations"]["get"]["responses"][200]>["items"][number], Schemas["Invitation"]>
>;
type TenantsGetCurrentReturnsTenant = Assert<
    Equal<Body<paths["/api/v1/tenants/current"]["get"]["responses"][200]>, Schemas["Tenant"]>
>;
type UsersListItemsAreMembers = Assert<
    Equal<Body<paths["/api/v1/users"]["get"]["responses"][200]>["items"][number], Schemas["Member"]>
>;
type MeGet = Body<paths["/api/v1/me"]["get"]["responses"][200]>;
type MeUserIsUser = Assert<Equal<MeGet["user"], Schemas["User"]>>;
type MeTenantIsTenant = Assert<Equal<MeGet["tenant"], Schemas["Tenant"]>>;
type MeMembershipsAreMemberships = Assert<Equal<MeGet["memberships"][number], Schemas["Membership"]>>;
