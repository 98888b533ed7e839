-- unitpolicy database: the whole current schema (version 1).
-- This is what migrations/ add up to; tests/unit/test_schema.cpp checks that
-- applying every migration yields exactly these tables, indexes and triggers.
-- A provider's own system may create the database from this file
-- (sqlite3 units.db < schema.sql) instead of running `unitctl init`.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE domains (
    name TEXT PRIMARY KEY NOT NULL CHECK (name <> '' AND name = lower(name))
) WITHOUT ROWID;

CREATE TABLE units (
    name      TEXT PRIMARY KEY NOT NULL CHECK (name <> ''),
    transport TEXT NOT NULL DEFAULT 'smtp' CHECK (transport <> '' AND instr(transport, ':') = 0),
    nexthop   TEXT NOT NULL CHECK (nexthop <> ''),
    state     TEXT NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'draining', 'down'))
) WITHOUT ROWID;

CREATE TABLE mailboxes (
    address   TEXT PRIMARY KEY NOT NULL CHECK (instr(address, '@') > 1),
    unit      TEXT NOT NULL REFERENCES units (name),
    state     TEXT NOT NULL DEFAULT 'active'
              CHECK (state IN ('active', 'moving', 'suspended', 'disabled')),
    moving_to TEXT REFERENCES units (name),
    CHECK ((state = 'moving') = (moving_to IS NOT NULL)),
    CHECK (moving_to IS NULL OR moving_to <> unit)
) WITHOUT ROWID;

CREATE INDEX mailboxes_by_unit ON mailboxes (unit);

CREATE TABLE aliases (
    address TEXT NOT NULL CHECK (instr(address, '@') > 0),
    target  TEXT NOT NULL CHECK (instr(target, '@') > 1),
    PRIMARY KEY (address, target)
) WITHOUT ROWID;

INSERT INTO meta (key, value) VALUES ('generation', '0');

-- Every write to a data table bumps meta.generation, whoever writes it
-- (unitctl or the provider's own provisioning system).
CREATE TRIGGER domains_insert AFTER INSERT ON domains BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'; END;
CREATE TRIGGER domains_update AFTER UPDATE ON domains BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'; END;
CREATE TRIGGER domains_delete AFTER DELETE ON domains BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'; END;
CREATE TRIGGER units_insert AFTER INSERT ON units BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'; END;
CREATE TRIGGER units_update AFTER UPDATE ON units BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'; END;
CREATE TRIGGER units_delete AFTER DELETE ON units BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'; END;
CREATE TRIGGER mailboxes_insert AFTER INSERT ON mailboxes BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'; END;
CREATE TRIGGER mailboxes_update AFTER UPDATE ON mailboxes BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'; END;
CREATE TRIGGER mailboxes_delete AFTER DELETE ON mailboxes BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'; END;
CREATE TRIGGER aliases_insert AFTER INSERT ON aliases BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'; END;
CREATE TRIGGER aliases_update AFTER UPDATE ON aliases BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'; END;
CREATE TRIGGER aliases_delete AFTER DELETE ON aliases BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'; END;

INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', '1');
