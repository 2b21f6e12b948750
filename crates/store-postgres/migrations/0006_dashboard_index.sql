-- Dashboards aggregate residents of a whole sub-district or community by
-- area, sex, birth year, residence and key groups. This index holds exactly
-- those columns, so the aggregates read it instead of the wide rows (with
-- their sealed ID numbers and phones).
CREATE INDEX residents_figures
    ON residents (sub_district_id, community_id, grid_id, sex, birth_date, residence, tags);
