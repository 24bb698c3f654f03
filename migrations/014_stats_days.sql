-- The day rollup of the stats scan (db/queries/stats_days.py): per website and local day
-- of the website's zone, every summary number and every value of the PAGE, EVENT and
-- session dimensions, with the day's visitors as a set (a roaring bitmap of visitor
-- numbers), so that a range of whole days is the union of its days' sets: exact
-- distinct visitors without reading the days' events.
--
-- A day is *usable* while stored and not dirty. Writes mark the days they may change
-- as dirty (stats_day_dirty) when those days lie before the website's `sealing_to`:
-- sessions inserted, updated or deleted (every counted event comes with its session's
-- upsert) mark each local day from the session's start to its last event; events
-- updated or deleted mark their own day. The sealer (resolvers/stats_days.py) computes
-- missing and dirty days from a snapshot and clears a mark only if its `seq` is the
-- one that snapshot saw, so a write during the computation keeps the day dirty.
-- Writers take a shared advisory lock per website in the trigger; the sealer takes it
-- exclusively after raising `sealing_to`, so writes that read the old value have
-- committed before it computes.
-- The tables exist on both paths (privacy deletions clear them); the triggers and the
-- sealer only on plain PostgreSQL (015): TimescaleDB hypertables refuse transition
-- tables, so there the stats read events.
CREATE TABLE stats_day_sites (
    website_id  text PRIMARY KEY REFERENCES websites (id) ON DELETE CASCADE,
    zone        text NOT NULL,           -- IANA zone of the stored days
    sealing_to  timestamptz NOT NULL,    -- days before this are marked when written
    next_number integer NOT NULL DEFAULT 1
);

CREATE TABLE stats_days (
    website_id text NOT NULL REFERENCES stats_day_sites (website_id) ON DELETE CASCADE,
    day        date NOT NULL,            -- local date in stats_day_sites.zone
    lo         timestamptz NOT NULL,     -- local midnight (UTC instant)
    hi         timestamptz NOT NULL,     -- next local midnight
    PRIMARY KEY (website_id, day)
);
CREATE INDEX stats_days_site_lo ON stats_days (website_id, lo);

-- dim '' is the day's summary (key ''); else a Dimension name and its displayed value.
-- visitors: portable roaring bitmap of the visitor numbers with counted events that day
-- (and that value); pageviews/events by event time; visits, bounces, duration
-- (microseconds), spv (their page views) of the sessions started that day.
CREATE TABLE stats_day_values (
    website_id text NOT NULL,
    day        date NOT NULL,
    dim        text NOT NULL,
    key        text COLLATE "C" NOT NULL,
    visitors   bytea NOT NULL,
    pageviews  bigint NOT NULL,
    events     bigint NOT NULL,
    visits     bigint NOT NULL,
    bounces    bigint NOT NULL,
    duration   bigint NOT NULL,
    spv        bigint NOT NULL,
    PRIMARY KEY (website_id, day, dim, key),
    FOREIGN KEY (website_id, day) REFERENCES stats_days (website_id, day) ON DELETE CASCADE
);

-- The day's summary per hour from its start (the last hour ends at the day's end; empty
-- hours included), so that a range starting or ending inside a stored day on a full
-- hour — the previous period across a change of offset starts at 01:00 or 23:00 — reads
-- its summary from the hours instead of the events.
CREATE TABLE stats_day_hours (
    website_id text NOT NULL,
    day        date NOT NULL,
    lo         timestamptz NOT NULL,
    hi         timestamptz NOT NULL,
    visitors   bytea NOT NULL,
    pageviews  bigint NOT NULL,
    events     bigint NOT NULL,
    visits     bigint NOT NULL,
    bounces    bigint NOT NULL,
    duration   bigint NOT NULL,
    spv        bigint NOT NULL,
    PRIMARY KEY (website_id, day, lo),
    FOREIGN KEY (website_id, day) REFERENCES stats_days (website_id, day) ON DELETE CASCADE
);

-- Dense per-website visitor numbers for the bitmaps. last_day: the latest stored day
-- the visitor has events on (numbers whose last day left the retention are removed).
CREATE TABLE visitor_numbers (
    website_id text NOT NULL REFERENCES stats_day_sites (website_id) ON DELETE CASCADE,
    visitor_id text COLLATE "C" NOT NULL,  -- compared bytewise: cheap index probes
    n          integer NOT NULL,
    last_day   date NOT NULL,
    PRIMARY KEY (website_id, visitor_id) INCLUDE (n)  -- reads probe the index alone
);
CREATE INDEX visitor_numbers_last_day ON visitor_numbers (website_id, last_day);

CREATE SEQUENCE stats_day_dirty_seq;
CREATE TABLE stats_day_dirty (
    website_id text NOT NULL REFERENCES stats_day_sites (website_id) ON DELETE CASCADE,
    day        date NOT NULL,
    seq        bigint NOT NULL,
    PRIMARY KEY (website_id, day)
);

