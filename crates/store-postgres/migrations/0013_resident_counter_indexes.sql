-- The age pyramid of a whole sub-district or community sums every
-- (grid, sex, birth year) counter in it, thousands of rows: indexes that
-- hold the grouping columns and the count let it read them in group order
-- without visiting the rows.
DROP INDEX grid_birth_years_sub_district;
DROP INDEX grid_birth_years_community;
CREATE INDEX grid_birth_years_sub_district
    ON grid_birth_years (sub_district_id, birth_year, sex, residents);
CREATE INDEX grid_birth_years_community
    ON grid_birth_years (community_id, birth_year, sex, residents);
