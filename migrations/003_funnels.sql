-- Funnels: constraints on the definition columns and indexes for reports.

ALTER TABLE funnels
    ADD CONSTRAINT funnels_count_by CHECK (count_by IN ('VISITOR', 'SESSION')),
    ADD CONSTRAINT funnels_ordering CHECK (ordering IN ('ORDERED', 'STRICT', 'ANY')),
    ADD CONSTRAINT funnels_window CHECK (window_seconds BETWEEN 1 AND 7776000);

-- A report reads the events of one website in [from, to + window) that match a step:
-- page views by path, custom events by name, funnel-tracker reports by funnel.
CREATE INDEX events_site_type_ts ON events (website_id, event_type, ts);
CREATE INDEX events_funnel_step ON events (website_id, (properties->>'funnel_id'), ts)
    WHERE event_type = 'funnel_step';
