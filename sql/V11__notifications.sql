-- In-app notifications (module src/modules/notifications): messages to one member of
-- a tenant, written by other modules' flows in their own request transaction
-- (`notifications::notify`) and read by that member alone (policies/notifications.sql).
--
-- The recipient is a membership, not a bare user: the composite key keeps a
-- notification inside its tenant (invariant 5), and a removed member's notifications
-- go with their membership.
CREATE TABLE notifications (
    tenant_id  uuid NOT NULL,
    id         uuid NOT NULL DEFAULT gen_random_uuid(),
    user_id    uuid NOT NULL,
    -- What happened, `resource.event` (`invitation.accepted`): clients choose an icon
    -- or a link by it, and email delivery will choose a template by it.
    kind       text NOT NULL CHECK (kind ~ '^[a-z][a-z_]*(\.[a-z_]+)+$'),
    title      text NOT NULL CHECK (btrim(title) <> ''),
    body       text NOT NULL DEFAULT '',
    -- What a client needs to act on it (the ids it concerns).
    data       jsonb NOT NULL DEFAULT '{}',
    read_at    timestamptz,
    -- clock_timestamp, not now(): several notifications written by one transaction
    -- keep the order they were written in, newest first.
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES tenant_users (tenant_id, user_id) ON DELETE CASCADE
);

-- The policy filters on (tenant_id, user_id); the list is newest first by
-- (created_at, id): one index serves both, as a range scan of the member's own rows.
CREATE INDEX notifications_recipient_recent_idx
    ON notifications (tenant_id, user_id, created_at DESC, id DESC);
-- The unread list, the unread count (asked on every page load of a client) and
-- read-all touch only unread rows: a small index that stays small as rows are read.
CREATE INDEX notifications_recipient_unread_idx
    ON notifications (tenant_id, user_id, created_at DESC, id DESC) WHERE read_at IS NULL;

-- No DELETE: notifications are marked read, never removed by a request. UPDATE of
-- read_at alone: a request cannot rewrite what a notification says or whom it is for.
GRANT SELECT, INSERT ON notifications TO rowguard_api;
GRANT UPDATE (read_at) ON notifications TO rowguard_api;
