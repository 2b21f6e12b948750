-- Per-grid resident counters (DESIGN.md "read models"): kept up to date by
-- every write that adds, changes or moves a resident or adds a household,
-- in the same transaction as the write, so a dashboard reads O(grids) rows
-- instead of aggregating every resident. A grid's community and
-- sub-district never change (areas do not move), so they ride along for
-- scope filters. Counts may reach 0; rows are never deleted.

-- Residents, households, floating residents and residents with any key-group
-- tag, per grid: the map's figures and the headline counts.
CREATE TABLE grid_figures (
    grid_id         UUID PRIMARY KEY NOT NULL,
    sub_district_id UUID NOT NULL,
    community_id    UUID NOT NULL,
    residents       BIGINT NOT NULL DEFAULT 0,
    households      BIGINT NOT NULL DEFAULT 0,
    floating        BIGINT NOT NULL DEFAULT 0,
    key_group       BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX grid_figures_sub_district ON grid_figures (sub_district_id);
CREATE INDEX grid_figures_community ON grid_figures (community_id);

-- Residents per (grid, sex, birth year): the age pyramid.
CREATE TABLE grid_birth_years (
    grid_id         UUID NOT NULL,
    sex             TEXT NOT NULL,
    birth_year      INTEGER NOT NULL,
    sub_district_id UUID NOT NULL,
    community_id    UUID NOT NULL,
    residents       BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (grid_id, sex, birth_year)
);
CREATE INDEX grid_birth_years_sub_district ON grid_birth_years (sub_district_id);
CREATE INDEX grid_birth_years_community ON grid_birth_years (community_id);

-- Residents per (grid, key-group tag): residents by tag.
CREATE TABLE grid_tag_counts (
    grid_id         UUID NOT NULL,
    tag             TEXT NOT NULL,
    sub_district_id UUID NOT NULL,
    community_id    UUID NOT NULL,
    residents       BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (grid_id, tag)
);
CREATE INDEX grid_tag_counts_sub_district ON grid_tag_counts (sub_district_id);
CREATE INDEX grid_tag_counts_community ON grid_tag_counts (community_id);

-- Backfill from the rows already stored.
INSERT INTO grid_figures
    (grid_id, sub_district_id, community_id, residents, households, floating, key_group)
SELECT grid_id, sub_district_id, community_id,
       SUM(residents), SUM(households), SUM(floating), SUM(key_group)
FROM (
    SELECT grid_id, sub_district_id, community_id, COUNT(*) AS residents, 0 AS households,
           SUM(CASE WHEN residence = 'floating' THEN 1 ELSE 0 END) AS floating,
           SUM(CASE WHEN tags <> '' THEN 1 ELSE 0 END) AS key_group
    FROM residents GROUP BY grid_id, sub_district_id, community_id
    UNION ALL
    SELECT grid_id, sub_district_id, community_id, 0, COUNT(*), 0, 0
    FROM households GROUP BY grid_id, sub_district_id, community_id
) AS parts
GROUP BY grid_id, sub_district_id, community_id;

INSERT INTO grid_birth_years (grid_id, sex, birth_year, sub_district_id, community_id, residents)
SELECT grid_id, sex, CAST(EXTRACT(YEAR FROM birth_date) AS INTEGER), sub_district_id, community_id,
       COUNT(*)
FROM residents
GROUP BY grid_id, sex, CAST(EXTRACT(YEAR FROM birth_date) AS INTEGER), sub_district_id, community_id;

INSERT INTO grid_tag_counts (grid_id, tag, sub_district_id, community_id, residents)
SELECT r.grid_id, t.tag, r.sub_district_id, r.community_id, COUNT(*)
FROM resident_tags t JOIN residents r ON r.id = t.resident_id
GROUP BY r.grid_id, t.tag, r.sub_district_id, r.community_id;
