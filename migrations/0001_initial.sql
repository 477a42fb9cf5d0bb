-- 0001_initial.sql -- the tables of CONTRACT §4: presences, presence_rejects,
-- ingest_offsets, schema_migrations.
--
-- Applied by `presence-ingest migrate` inside one transaction, together with
-- the row that records it in schema_migrations (created here).

CREATE TABLE schema_migrations (
    version    int         PRIMARY KEY,
    name       text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);

-- One row per presence id. The writer COPYs new ids in and compares the
-- ones already stored without touching them: a replay writes nothing.
-- kafka_* is the provenance of the message that stored the row (for `load`:
-- the file path, partition -1, the line number).
CREATE TABLE presences (
    id                  bigint      PRIMARY KEY CHECK (id > 0),
    connection_id       bigint      NOT NULL CHECK (connection_id > 0),
    type                text        NOT NULL,
    reason              text        NOT NULL,
    asset               text        NULL,
    time                timestamptz NOT NULL,
    time_offset_minutes smallint    NOT NULL,
    kafka_topic         text,
    kafka_partition     int,
    kafka_offset        bigint,
    ingested_at         timestamptz NOT NULL DEFAULT now()
);

-- Connectivity of one device over time ("when was asset X last connected",
-- "its disconnections last week").
CREATE INDEX presences_asset_time_idx ON presences (asset, time);
-- Every event of one connection (connect … disconnect pairs).
CREATE INDEX presences_connection_id_idx ON presences (connection_id);
-- Fleet-wide time windows ("disconnections per hour"). BRIN: events arrive
-- roughly in time order, so a block-range index is tiny and costs almost
-- nothing per insert, where a B-tree would slow every batch.
CREATE INDEX presences_time_brin ON presences USING brin (time);

-- One row per rejected element of a message. The unique key makes a replay
-- insert nothing (INSERT … ON CONFLICT DO NOTHING).
CREATE TABLE presence_rejects (
    topic       text        NOT NULL,
    partition   int         NOT NULL,
    "offset"    bigint      NOT NULL,
    element     int         NOT NULL,
    error       text        NOT NULL,
    detail      text        NOT NULL,
    payload     bytea,
    key         bytea,
    rejected_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT presence_rejects_message_key
        UNIQUE (topic, partition, "offset", element)
);

-- "What was rejected lately, and why" (operators alert on error codes).
CREATE INDEX presence_rejects_error_idx ON presence_rejects (error, rejected_at);

-- The next Kafka offset to consume, per consumer group and partition: written
-- in the same transaction as the rows it covers, and only ever moved forward.
CREATE TABLE ingest_offsets (
    consumer_group text        NOT NULL,
    topic          text        NOT NULL,
    partition      int         NOT NULL,
    next_offset    bigint      NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, topic, partition)
);
