-- The registry: areas, households, residents, accounts and sessions.
-- Ids are UUIDv7 (16-byte blobs here), times are UTC, there are no triggers,
-- and every large table carries community_id so it can be sharded by it later.

CREATE TABLE areas (
    id              BLOB PRIMARY KEY NOT NULL,
    kind            TEXT NOT NULL,
    parent_id       BLOB REFERENCES areas (id),
    sub_district_id BLOB,
    community_id    BLOB,
    grid_id         BLOB,
    building_id     BLOB,
    unit_id         BLOB,
    code            TEXT,
    name            TEXT NOT NULL,
    grid_kind       TEXT,
    boundary        TEXT,
    address         TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
CREATE UNIQUE INDEX areas_code ON areas (code) WHERE code IS NOT NULL;
CREATE INDEX areas_parent ON areas (parent_id, id);
CREATE INDEX areas_kind ON areas (kind, id);
CREATE INDEX areas_community ON areas (community_id, kind);
CREATE INDEX areas_grid ON areas (grid_id, kind);

CREATE TABLE households (
    id              BLOB PRIMARY KEY NOT NULL,
    sub_district_id BLOB NOT NULL,
    community_id    BLOB NOT NULL,
    grid_id         BLOB NOT NULL,
    building_id     BLOB NOT NULL,
    unit_id         BLOB NOT NULL REFERENCES areas (id),
    room            TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
CREATE UNIQUE INDEX households_unit_id_room ON households (unit_id, room);
CREATE INDEX households_community ON households (community_id, id);
CREATE INDEX households_grid ON households (grid_id, id);
CREATE INDEX households_building ON households (building_id, id);

CREATE TABLE residents (
    id              BLOB PRIMARY KEY NOT NULL,
    household_id    BLOB NOT NULL REFERENCES households (id),
    sub_district_id BLOB NOT NULL,
    community_id    BLOB NOT NULL,
    grid_id         BLOB NOT NULL,
    building_id     BLOB NOT NULL,
    unit_id         BLOB NOT NULL,
    name            TEXT NOT NULL,
    sex             TEXT NOT NULL,
    birth_date      TEXT NOT NULL,
    id_kind         TEXT,
    id_cipher       BLOB,
    id_blind        BLOB,
    phone_cipher    BLOB,
    phone_blind     BLOB,
    relation        TEXT NOT NULL,
    residence       TEXT NOT NULL,
    arrived_on      TEXT,
    origin          TEXT,
    tags            TEXT NOT NULL DEFAULT '',
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
CREATE UNIQUE INDEX residents_id_blind ON residents (id_blind) WHERE id_blind IS NOT NULL;
CREATE INDEX residents_phone_blind ON residents (phone_blind) WHERE phone_blind IS NOT NULL;
CREATE INDEX residents_name ON residents (name, id);
CREATE INDEX residents_community_name ON residents (community_id, name, id);
CREATE INDEX residents_grid_name ON residents (grid_id, name, id);
CREATE INDEX residents_building ON residents (building_id);
CREATE INDEX residents_household ON residents (household_id);

CREATE TABLE resident_tags (
    resident_id  BLOB NOT NULL REFERENCES residents (id) ON DELETE CASCADE,
    tag          TEXT NOT NULL,
    community_id BLOB NOT NULL,
    grid_id      BLOB NOT NULL,
    PRIMARY KEY (resident_id, tag)
);
CREATE INDEX resident_tags_tag ON resident_tags (tag, community_id);

CREATE TABLE users (
    id              BLOB PRIMARY KEY NOT NULL,
    username        TEXT NOT NULL,
    display_name    TEXT NOT NULL,
    phone           TEXT,
    password_hash   TEXT NOT NULL,
    role            TEXT NOT NULL,
    scope_kind      TEXT NOT NULL,
    scope_area_id   BLOB NOT NULL REFERENCES areas (id),
    sub_district_id BLOB,
    community_id    BLOB,
    grid_id         BLOB,
    building_id     BLOB,
    unit_id         BLOB,
    disabled        INTEGER NOT NULL DEFAULT 0,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
CREATE UNIQUE INDEX users_username ON users (username);
CREATE INDEX users_community ON users (community_id);
CREATE INDEX users_grid ON users (grid_id);

CREATE TABLE sessions (
    token_hash   BLOB PRIMARY KEY NOT NULL,
    user_id      BLOB NOT NULL REFERENCES users (id),
    created_at   TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    expires_at   TEXT NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);
