// Per-grid resident counters (DESIGN.md "read models", migration 0012),
// shared by both SQL backends. Included after `sql_store.rs`, whose helpers
// it uses.
//
// Every write that adds a household, or adds, changes or moves a resident,
// turns what it changes into a `ResidentDelta` and applies it on the same
// connection, inside the write's transaction: the counters commit or roll
// back with the rows they count. The figures of a dashboard are then sums
// over O(grids) counter rows instead of aggregates over every resident.
// Scopes and groupings below a grid (a building's page) still aggregate the
// rows, which are few there.

use std::collections::BTreeMap;

use epigrid_store::ResidentFigures;

/// Counter rows per multi-row upsert: 7 columns × 1,000 rows stays far under
/// both backends' bind-parameter limits.
const COUNTER_CHUNK: usize = 1_000;

/// What one resident contributes to the counters.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CountedResident {
    grid: Uuid,
    sub_district: Uuid,
    community: Uuid,
    sex: String,
    birth_year: i32,
    floating: bool,
    tags: Vec<String>,
}

impl CountedResident {
    /// `None` for a record without a full path, which the residents table
    /// refuses anyway (its path columns are NOT NULL).
    fn of(r: &ResidentRecord) -> Option<Self> {
        use chrono::Datelike;
        Some(Self {
            grid: r.path.grid?,
            sub_district: r.path.sub_district?,
            community: r.path.community?,
            sex: sex_str(r.sex).to_owned(),
            birth_year: r.birth_date.year(),
            floating: matches!(r.residence, Residence::Floating { .. }),
            tags: r.tags.iter().map(|t| t.as_str().to_owned()).collect(),
        })
    }

    /// The stored row as it is before a rewrite: the columns of
    /// `COUNTED_COLUMNS`.
    fn from_row(row: &DbRow) -> StoreResult<Self> {
        use chrono::Datelike;
        let birth_date: NaiveDate = get(row, "birth_date")?;
        let residence: String = get(row, "residence")?;
        let tags: String = get(row, "tags")?;
        Ok(Self {
            grid: get(row, "grid_id")?,
            sub_district: get(row, "sub_district_id")?,
            community: get(row, "community_id")?,
            sex: get(row, "sex")?,
            birth_year: birth_date.year(),
            floating: residence == "floating",
            tags: tags.split(',').filter(|t| !t.is_empty()).map(str::to_owned).collect(),
        })
    }
}

const COUNTED_COLUMNS: &str =
    "grid_id, sub_district_id, community_id, sex, birth_date, residence, tags";

/// One grid's change of `grid_figures`.
#[derive(Debug, Clone, Copy, Default)]
struct GridFiguresDelta {
    sub_district: Uuid,
    community: Uuid,
    residents: i64,
    households: i64,
    floating: i64,
    key_group: i64,
}

/// The change a write makes to the counters, summed per counter row. Keys
/// are kept sorted so concurrent writers on PostgreSQL lock counter rows in
/// the same order.
#[derive(Debug, Default)]
struct ResidentDelta {
    figures: BTreeMap<Uuid, GridFiguresDelta>,
    /// (grid, sex, birth year) → (sub-district, community, residents).
    years: BTreeMap<(Uuid, String, i32), (Uuid, Uuid, i64)>,
    /// (grid, tag) → (sub-district, community, residents).
    tags: BTreeMap<(Uuid, String), (Uuid, Uuid, i64)>,
}

impl ResidentDelta {
    /// The counters of rows being inserted.
    fn inserted(households: &[HouseholdRecord], residents: &[ResidentRecord]) -> Self {
        let mut delta = Self::default();
        for h in households {
            if let (Some(grid), Some(sub_district), Some(community)) =
                (h.path.grid, h.path.sub_district, h.path.community)
            {
                delta.figures_of(grid, sub_district, community).households += 1;
            }
        }
        for r in residents {
            if let Some(counted) = CountedResident::of(r) {
                delta.add(&counted, 1);
            }
        }
        delta
    }

    fn figures_of(&mut self, grid: Uuid, sub_district: Uuid, community: Uuid) -> &mut GridFiguresDelta {
        self.figures.entry(grid).or_insert(GridFiguresDelta {
            sub_district,
            community,
            ..GridFiguresDelta::default()
        })
    }

    /// Counts `r` in (`sign` = 1) or out (`sign` = -1).
    fn add(&mut self, r: &CountedResident, sign: i64) {
        let figures = self.figures_of(r.grid, r.sub_district, r.community);
        figures.residents += sign;
        if r.floating {
            figures.floating += sign;
        }
        if !r.tags.is_empty() {
            figures.key_group += sign;
        }
        self.years
            .entry((r.grid, r.sex.clone(), r.birth_year))
            .or_insert((r.sub_district, r.community, 0))
            .2 += sign;
        for tag in &r.tags {
            self.tags
                .entry((r.grid, tag.clone()))
                .or_insert((r.sub_district, r.community, 0))
                .2 += sign;
        }
    }

    /// Upserts every row whose change is not zero: a rewrite that keeps the
    /// counted fields (a new phone, a corrected name) writes no counter.
    async fn apply(&self, conn: &mut <Db as sqlx::Database>::Connection) -> StoreResult<()> {
        let figures: Vec<(&Uuid, &GridFiguresDelta)> = self
            .figures
            .iter()
            .filter(|(_, f)| f.residents != 0 || f.households != 0 || f.floating != 0 || f.key_group != 0)
            .collect();
        for chunk in figures.chunks(COUNTER_CHUNK) {
            let mut b = QueryBuilder::<Db>::new(
                "INSERT INTO grid_figures (grid_id, sub_district_id, community_id, residents, \
                 households, floating, key_group) ",
            );
            b.push_values(chunk, |mut row, (grid, f)| {
                row.push_bind(**grid)
                    .push_bind(f.sub_district)
                    .push_bind(f.community)
                    .push_bind(f.residents)
                    .push_bind(f.households)
                    .push_bind(f.floating)
                    .push_bind(f.key_group);
            });
            b.push(
                " ON CONFLICT (grid_id) DO UPDATE SET \
                 residents = grid_figures.residents + excluded.residents, \
                 households = grid_figures.households + excluded.households, \
                 floating = grid_figures.floating + excluded.floating, \
                 key_group = grid_figures.key_group + excluded.key_group",
            );
            b.build().execute(&mut *conn).await.map_err(map_error)?;
        }
        let years: Vec<_> = self.years.iter().filter(|(_, v)| v.2 != 0).collect();
        for chunk in years.chunks(COUNTER_CHUNK) {
            let mut b = QueryBuilder::<Db>::new(
                "INSERT INTO grid_birth_years (grid_id, sex, birth_year, sub_district_id, \
                 community_id, residents) ",
            );
            b.push_values(chunk, |mut row, ((grid, sex, year), (sub_district, community, n))| {
                row.push_bind(*grid)
                    .push_bind(sex.clone())
                    .push_bind(*year)
                    .push_bind(*sub_district)
                    .push_bind(*community)
                    .push_bind(*n);
            });
            b.push(
                " ON CONFLICT (grid_id, sex, birth_year) DO UPDATE SET \
                 residents = grid_birth_years.residents + excluded.residents",
            );
            b.build().execute(&mut *conn).await.map_err(map_error)?;
        }
        let tags: Vec<_> = self.tags.iter().filter(|(_, v)| v.2 != 0).collect();
        for chunk in tags.chunks(COUNTER_CHUNK) {
            let mut b = QueryBuilder::<Db>::new(
                "INSERT INTO grid_tag_counts (grid_id, tag, sub_district_id, community_id, \
                 residents) ",
            );
            b.push_values(chunk, |mut row, ((grid, tag), (sub_district, community, n))| {
                row.push_bind(*grid)
                    .push_bind(tag.clone())
                    .push_bind(*sub_district)
                    .push_bind(*community)
                    .push_bind(*n);
            });
            b.push(
                " ON CONFLICT (grid_id, tag) DO UPDATE SET \
                 residents = grid_tag_counts.residents + excluded.residents",
            );
            b.build().execute(&mut *conn).await.map_err(map_error)?;
        }
        Ok(())
    }
}

/// Counts households and residents being inserted, on the inserting
/// transaction's connection. Every bulk path calls this: `insert_bulk_on`
/// and the import's `apply_import_chunk` and `bulk_load`.
async fn count_inserted(
    conn: &mut <Db as sqlx::Database>::Connection,
    households: &[HouseholdRecord],
    residents: &[ResidentRecord],
) -> StoreResult<()> {
    ResidentDelta::inserted(households, residents).apply(conn).await
}

/// The stored resident `id` as the counters know it, locked against
/// concurrent rewrites until the transaction ends (PostgreSQL; SQLite's
/// single writer already serialises them). `None` when there is no such
/// resident.
async fn counted_resident_on(
    conn: &mut <Db as sqlx::Database>::Connection,
    id: Uuid,
) -> StoreResult<Option<CountedResident>> {
    let sql = format!("SELECT {COUNTED_COLUMNS} FROM residents WHERE id = $1{ROW_LOCK_SQL}");
    let row = sqlx::query(AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(map_error)?;
    row.as_ref().map(CountedResident::from_row).transpose()
}

/// Counts a rewrite of a resident: the stored version out, `new` in.
/// Called by `update_resident_on` before it rewrites the row.
async fn count_rewrite(
    conn: &mut <Db as sqlx::Database>::Connection,
    new: &ResidentRecord,
) -> StoreResult<()> {
    let Some(old) = counted_resident_on(conn, new.id).await? else {
        return Ok(());
    };
    let Some(counted) = CountedResident::of(new) else {
        return Ok(());
    };
    if old == counted {
        return Ok(());
    }
    let mut delta = ResidentDelta::default();
    delta.add(&old, -1);
    delta.add(&counted, 1);
    delta.apply(conn).await
}

/// True when the per-grid counters can answer for `within` grouped by
/// `by`: both at grid level or above.
fn counters_serve(within: Option<Scope>, by: AreaKind) -> bool {
    let above_grid = |kind: AreaKind| {
        matches!(kind, AreaKind::SubDistrict | AreaKind::Community | AreaKind::Grid)
    };
    within.is_none_or(|s| above_grid(s.kind)) && above_grid(by)
}

impl SqlStore {
    async fn counted_area_figures(
        &self,
        within: Option<Scope>,
        by: AreaKind,
    ) -> StoreResult<Vec<AreaFigures>> {
        let column = path_column(by);
        let mut b = QueryBuilder::<Db>::new(format!(
            "SELECT {column} AS area_id, CAST(SUM(residents) AS BIGINT) AS residents, \
             CAST(SUM(households) AS BIGINT) AS households, \
             CAST(SUM(floating) AS BIGINT) AS floating, \
             CAST(SUM(key_group) AS BIGINT) AS key_group FROM grid_figures WHERE 1 = 1"
        ));
        push_scope(&mut b, within);
        b.push(format_args!(
            " GROUP BY {column} HAVING SUM(residents) <> 0 OR SUM(households) <> 0"
        ));
        let rows = b.build().fetch_all(&self.reader).await.map_err(map_error)?;
        rows.iter()
            .map(|row| {
                Ok(AreaFigures {
                    area_id: get(row, "area_id")?,
                    residents: get(row, "residents")?,
                    households: get(row, "households")?,
                    floating: get(row, "floating")?,
                    key_group: get(row, "key_group")?,
                })
            })
            .collect()
    }

    /// Residents and households of a scope at grid level or above.
    async fn counted_totals(&self, within: Option<Scope>) -> StoreResult<(i64, i64)> {
        let mut b = QueryBuilder::<Db>::new(
            "SELECT CAST(COALESCE(SUM(residents), 0) AS BIGINT) AS residents, \
             CAST(COALESCE(SUM(households), 0) AS BIGINT) AS households \
             FROM grid_figures WHERE 1 = 1",
        );
        push_scope(&mut b, within);
        let row = b.build().fetch_one(&self.reader).await.map_err(map_error)?;
        Ok((get(&row, "residents")?, get(&row, "households")?))
    }

    async fn counted_birth_years(&self, within: Option<Scope>) -> StoreResult<Vec<BirthYearCount>> {
        let mut b = QueryBuilder::<Db>::new(
            "SELECT CAST(birth_year AS BIGINT) AS year, sex, \
             CAST(SUM(residents) AS BIGINT) AS residents FROM grid_birth_years WHERE 1 = 1",
        );
        push_scope(&mut b, within);
        b.push(" GROUP BY birth_year, sex HAVING SUM(residents) <> 0 ORDER BY year, sex");
        let rows = b.build().fetch_all(&self.reader).await.map_err(map_error)?;
        rows.iter().map(birth_year_count_from_row).collect()
    }

    async fn counted_tags(&self, within: Option<Scope>) -> StoreResult<Vec<TagCount>> {
        let mut b = QueryBuilder::<Db>::new(
            "SELECT tag, CAST(SUM(residents) AS BIGINT) AS residents \
             FROM grid_tag_counts WHERE 1 = 1",
        );
        push_scope(&mut b, within);
        b.push(" GROUP BY tag HAVING SUM(residents) <> 0 ORDER BY tag");
        let rows = b.build().fetch_all(&self.reader).await.map_err(map_error)?;
        rows.iter()
            .map(|row| Ok(TagCount { tag: get(row, "tag")?, residents: get(row, "residents")? }))
            .collect()
    }

    /// What the counters must hold, counted from the rows themselves.
    async fn recounted(&self, within: Option<Scope>, by: AreaKind) -> StoreResult<ResidentFigures> {
        Ok(ResidentFigures {
            areas: scan_area_figures(&self.reader, within, by).await?,
            birth_years: scan_birth_years(&self.reader, within).await?,
            tags: scan_tags(&self.reader, within).await?,
        })
    }
}

fn birth_year_count_from_row(row: &DbRow) -> StoreResult<BirthYearCount> {
    let year: i64 = get(row, "year")?;
    let sex: String = get(row, "sex")?;
    Ok(BirthYearCount {
        year: i32::try_from(year).map_err(|_| corrupt("birth year", &year.to_string()))?,
        sex: parse_sex(&sex)?,
        residents: get(row, "residents")?,
    })
}

// ---- the same figures aggregated from the rows --------------------------------
// For scopes below a grid, and as the reference the counters are checked
// against (`Store::recount_resident_figures`).

async fn scan_area_figures(
    pool: &sqlx::Pool<Db>,
    within: Option<Scope>,
    by: AreaKind,
) -> StoreResult<Vec<AreaFigures>> {
    let column = path_column(by);
    let mut b = QueryBuilder::<Db>::new(format!(
        "SELECT {column} AS area_id, COUNT(*) AS residents, \
         SUM(CASE WHEN residence = 'floating' THEN 1 ELSE 0 END) AS floating, \
         SUM(CASE WHEN tags <> '' THEN 1 ELSE 0 END) AS key_group \
         FROM residents WHERE 1 = 1"
    ));
    push_scope(&mut b, within);
    b.push(format_args!(" GROUP BY {column}"));
    let rows = b.build().fetch_all(pool).await.map_err(map_error)?;
    let mut figures = Vec::with_capacity(rows.len());
    for row in &rows {
        figures.push(AreaFigures {
            area_id: get(row, "area_id")?,
            residents: get(row, "residents")?,
            households: 0,
            floating: get(row, "floating")?,
            key_group: get(row, "key_group")?,
        });
    }
    let mut b = QueryBuilder::<Db>::new(format!(
        "SELECT {column} AS area_id, COUNT(*) AS households FROM households WHERE 1 = 1"
    ));
    push_scope(&mut b, within);
    b.push(format_args!(" GROUP BY {column}"));
    for row in b.build().fetch_all(pool).await.map_err(map_error)? {
        let area_id: Uuid = get(&row, "area_id")?;
        let households: i64 = get(&row, "households")?;
        match figures.iter_mut().find(|f| f.area_id == area_id) {
            Some(f) => f.households = households,
            None => figures.push(AreaFigures { area_id, households, ..AreaFigures::default() }),
        }
    }
    Ok(figures)
}

async fn scan_birth_years(
    pool: &sqlx::Pool<Db>,
    within: Option<Scope>,
) -> StoreResult<Vec<BirthYearCount>> {
    let mut b = QueryBuilder::<Db>::new(format!(
        "SELECT {BIRTH_YEAR_SQL} AS year, sex, COUNT(*) AS residents FROM residents WHERE 1 = 1"
    ));
    push_scope(&mut b, within);
    b.push(" GROUP BY year, sex ORDER BY year, sex");
    let rows = b.build().fetch_all(pool).await.map_err(map_error)?;
    rows.iter().map(birth_year_count_from_row).collect()
}

async fn scan_tags(pool: &sqlx::Pool<Db>, within: Option<Scope>) -> StoreResult<Vec<TagCount>> {
    let mut b = QueryBuilder::<Db>::new(
        "SELECT t.tag AS tag, COUNT(*) AS residents FROM resident_tags t \
         JOIN residents r ON r.id = t.resident_id WHERE 1 = 1",
    );
    if let Some(scope) = within {
        b.push(format_args!(" AND r.{} = ", path_column(scope.kind)));
        b.push_bind(scope.area_id);
    }
    b.push(" GROUP BY t.tag ORDER BY t.tag");
    let rows = b.build().fetch_all(pool).await.map_err(map_error)?;
    rows.iter()
        .map(|row| Ok(TagCount { tag: get(row, "tag")?, residents: get(row, "residents")? }))
        .collect()
}
