-- Core tables. Both the plain-PostgreSQL and the TimescaleDB paths use these exact
-- tables and the same queries; 002 turns `events` into a hypertable when available.

CREATE TABLE websites (
    id          text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9_.:-]{1,64}$'),
    domain      text NOT NULL,
    name        text,
    timezone    text NOT NULL DEFAULT 'UTC',
    is_public   boolean NOT NULL DEFAULT false,
    owner_id    text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX websites_owner ON websites (owner_id) WHERE owner_id IS NOT NULL;

-- One row per received event. `ts` is the event time (metrics.md), UTC instant.
CREATE TABLE events (
    website_id    text NOT NULL,
    ts            timestamptz NOT NULL,
    id            uuid NOT NULL,
    event_type    text NOT NULL,
    visitor_id    text NOT NULL,
    session_id    text NOT NULL,
    page          text NOT NULL,
    referrer      text,
    referrer_host text,
    utm_source    text,
    utm_medium    text,
    utm_campaign  text,
    utm_term      text,
    utm_content   text,
    country       text,
    city          text,
    browser       text,
    os            text,
    device        text,
    screen        text,
    time_on_page  integer,
    properties    jsonb,
    received_at   timestamptz NOT NULL DEFAULT now()
);
-- Event ids make retries idempotent: ON CONFLICT DO NOTHING against this index.
CREATE UNIQUE INDEX events_identity ON events (website_id, id, ts);
CREATE INDEX events_site_ts ON events (website_id, ts);
CREATE INDEX events_site_session ON events (website_id, session_id);
CREATE INDEX events_site_visitor ON events (website_id, visitor_id);

-- One row per (website, session), maintained in the same transaction as its events.
-- First-event fields come from the session's earliest event (ties: smallest id).
CREATE TABLE sessions (
    website_id    text NOT NULL,
    session_id    text NOT NULL,
    visitor_id    text NOT NULL,
    started_at    timestamptz NOT NULL,
    first_id      uuid NOT NULL,
    last_seen     timestamptz NOT NULL,
    entry_ts      timestamptz,
    entry_page    text,
    exit_ts       timestamptz,
    exit_page     text,
    pageviews     integer NOT NULL DEFAULT 0,
    events        integer NOT NULL DEFAULT 0,
    referrer      text,
    referrer_host text,
    utm_source    text,
    utm_medium    text,
    utm_campaign  text,
    utm_term      text,
    utm_content   text,
    country       text,
    city          text,
    browser       text,
    os            text,
    device        text,
    PRIMARY KEY (website_id, session_id)
);
CREATE INDEX sessions_site_started ON sessions (website_id, started_at);
CREATE INDEX sessions_site_visitor ON sessions (website_id, visitor_id, last_seen DESC);

CREATE TABLE funnels (
    id          uuid PRIMARY KEY,
    website_id  text NOT NULL REFERENCES websites (id) ON DELETE CASCADE,
    name        text NOT NULL,
    description text,
    steps       jsonb NOT NULL,
    is_active   boolean NOT NULL DEFAULT true,
    window_seconds integer NOT NULL DEFAULT 604800,
    count_by    text NOT NULL DEFAULT 'VISITOR',
    ordering    text NOT NULL DEFAULT 'ORDERED',
    user_id     text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX funnels_site ON funnels (website_id, created_at DESC);

-- Daily salts for cookieless visitor ids; rows older than today are deleted daily.
CREATE TABLE visitor_salts (
    day   date PRIMARY KEY,
    salt  bytea NOT NULL
);

-- Every deletion of analytics data is recorded here (privacy, retention, admin).
CREATE TABLE audit_log (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    actor       text NOT NULL,
    action      text NOT NULL,
    website_id  text,
    detail      jsonb
);

-- Long-lived API keys (stored as SHA-256 hashes) for server-to-server use.
CREATE TABLE api_keys (
    id          uuid PRIMARY KEY,
    name        text NOT NULL,
    key_hash    text NOT NULL UNIQUE,
    websites    text[],            -- NULL = all websites
    scope       text NOT NULL CHECK (scope IN ('read', 'write', 'admin')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);
