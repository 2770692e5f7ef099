-- The in-country record. Append-only: rows of `journal` are never updated or deleted.
CREATE TABLE IF NOT EXISTS journal (
    seq  INTEGER PRIMARY KEY,
    ts   INTEGER NOT NULL,
    kind TEXT    NOT NULL,
    data TEXT    NOT NULL,  -- canonical JSON of the entry's data
    prev TEXT    NOT NULL,
    hash TEXT    NOT NULL
);

-- Where each round lies in the journal (written when it ends), so that a proof or a
-- regulator's round lookup reads a seq range instead of scanning. No index on `journal`
-- besides its key: every index is paid on the bet path.
CREATE TABLE IF NOT EXISTS rounds (
    table_id  TEXT NOT NULL,
    chain_id  TEXT NOT NULL,
    n         INTEGER NOT NULL,
    game      TEXT NOT NULL,
    first_seq INTEGER NOT NULL,  -- round.opened
    last_seq  INTEGER NOT NULL,  -- round.settled or round.voided
    status    TEXT NOT NULL,     -- settled | voided
    reason    TEXT,
    PRIMARY KEY (table_id, chain_id, n)
);
CREATE TABLE IF NOT EXISTS chains (
    table_id TEXT NOT NULL,
    chain_id TEXT NOT NULL,
    seq      INTEGER NOT NULL,   -- the fairness.chain entry
    PRIMARY KEY (table_id, chain_id)
);

-- Seed chains: the secret top seed of each table's chain. Never leaves the edge; the
-- journal carries only the commitment, and each round's seed is revealed at settlement.
CREATE TABLE IF NOT EXISTS chain_secrets (
    table_id TEXT NOT NULL,
    chain_id TEXT NOT NULL,
    seed_top TEXT NOT NULL,
    length   INTEGER NOT NULL,
    PRIMARY KEY (table_id, chain_id)
);

-- Personal data, in-country only (regulators see it here; it never enters the journal).
CREATE TABLE IF NOT EXISTS players (
    player_id    TEXT PRIMARY KEY,
    pseudonym    TEXT NOT NULL UNIQUE,
    display_name TEXT,
    email        TEXT,
    birth_date   TEXT,
    address      TEXT,
    created_ts   INTEGER NOT NULL
);

-- HTTP Idempotency-Key answers, committed in the same transaction as the bet they answer.
CREATE TABLE IF NOT EXISTS idempotency (
    player   TEXT NOT NULL,
    key      TEXT NOT NULL,
    body_sha TEXT NOT NULL,
    status   INTEGER NOT NULL,
    response TEXT NOT NULL,
    PRIMARY KEY (player, key)
);

-- Small key/value state of adapters (e.g. the sync outbox's last acknowledged seq).
CREATE TABLE IF NOT EXISTS kv (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- Identity documents submitted for KYC: in-country only; the cloud sees the reference.
CREATE TABLE IF NOT EXISTS kyc_documents (
    reference  TEXT PRIMARY KEY,
    player     TEXT NOT NULL,
    document   BLOB NOT NULL,
    created_ts INTEGER NOT NULL
);
