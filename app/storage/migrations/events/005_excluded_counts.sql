-- Hits dropped by a site's exclusion rules (meta's site_exclusions), per site-day and rule
-- kind ('ip', 'hostname', 'page', 'country'): nothing else of them is stored.
CREATE TABLE excluded_counts (
    site_id VARCHAR NOT NULL,
    day     DATE NOT NULL,
    reason  VARCHAR NOT NULL,
    hits    BIGINT NOT NULL,
    PRIMARY KEY (site_id, day, reason)
);
