-- The registry: areas, households, residents, accounts and sessions.
-- Ids are UUIDv7 (native uuid here), times are UTC, there are no triggers,
-- and every large table carries community_id so it can be sharded by it later.

CREATE TABLE areas (
    id              UUID PRIMARY KEY,
    kind            TEXT NOT NULL,
    parent_id       UUID REFERENCES areas (id),
    sub_district_id UUID,
    community_id    UUID,
    grid_id         UUID,
    building_id     UUID,
    unit_id         UUID,
    code            TEXT,
    name            TEXT NOT NULL,
    grid_kind       TEXT,
    boundary        TEXT,
    address         TEXT,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX areas_code ON areas (code) WHERE code IS NOT NULL;
CREATE INDEX areas_parent ON areas (parent_id, id);
CREATE INDEX areas_kind ON areas (kind, id);
CREATE INDEX areas_community ON areas (community_id, kind);
CREATE INDEX areas_grid ON areas (grid_id, kind);

CREATE TABLE households (
    id              UUID PRIMARY KEY,
    sub_district_id UUID NOT NULL,
    community_id    UUID NOT NULL,
    grid_id         UUID NOT NULL,
    building_id     UUID NOT NULL,
    unit_id         UUID NOT NULL REFERENCES areas (id),
    room            TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX households_unit_id_room ON households (unit_id, room);
CREATE INDEX households_community ON households (community_id, id);
CREATE INDEX households_grid ON households (grid_id, id);
CREATE INDEX households_building ON households (building_id, id);

CREATE TABLE residents (
    id              UUID PRIMARY KEY,
    household_id    UUID NOT NULL REFERENCES households (id),
    sub_district_id UUID NOT NULL,
    community_id    UUID NOT NULL,
    grid_id         UUID NOT NULL,
    building_id     UUID NOT NULL,
    unit_id         UUID NOT NULL,
    name            TEXT COLLATE "C" NOT NULL,
    sex             TEXT NOT NULL,
    birth_date      DATE NOT NULL,
    id_kind         TEXT,
    id_cipher       BYTEA,
    id_blind        BYTEA,
    phone_cipher    BYTEA,
    phone_blind     BYTEA,
    relation        TEXT NOT NULL,
    residence       TEXT NOT NULL,
    arrived_on      DATE,
    origin          TEXT,
    tags            TEXT NOT NULL DEFAULT '',
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX residents_id_blind ON residents (id_blind) WHERE id_blind IS NOT NULL;
CREATE INDEX residents_phone_blind ON residents (phone_blind) WHERE phone_blind IS NOT NULL;
CREATE INDEX residents_name ON residents (name, id);
CREATE INDEX residents_community_name ON residents (community_id, name, id);
CREATE INDEX residents_grid_name ON residents (grid_id, name, id);
CREATE INDEX residents_building ON residents (building_id);
CREATE INDEX residents_household ON residents (household_id);

CREATE TABLE resident_tags (
    resident_id  UUID NOT NULL REFERENCES residents (id) ON DELETE CASCADE,
    tag          TEXT NOT NULL,
    community_id UUID NOT NULL,
    grid_id      UUID NOT NULL,
    PRIMARY KEY (resident_id, tag)
);
CREATE INDEX resident_tags_tag ON resident_tags (tag, community_id);

CREATE TABLE users (
    id              UUID PRIMARY KEY,
    username        TEXT NOT NULL,
    display_name    TEXT NOT NULL,
    phone           TEXT,
    password_hash   TEXT NOT NULL,
    role            TEXT NOT NULL,
    scope_kind      TEXT NOT NULL,
    scope_area_id   UUID NOT NULL REFERENCES areas (id),
    sub_district_id UUID,
    community_id    UUID,
    grid_id         UUID,
    building_id     UUID,
    unit_id         UUID,
    disabled        BOOLEAN NOT NULL DEFAULT FALSE,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX users_username ON users (username);
CREATE INDEX users_community ON users (community_id);
CREATE INDEX users_grid ON users (grid_id);

CREATE TABLE sessions (
    token_hash   BYTEA PRIMARY KEY,
    user_id      UUID NOT NULL REFERENCES users (id),
    created_at   TIMESTAMPTZ NOT NULL,
    last_seen_at TIMESTAMPTZ NOT NULL,
    expires_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);
