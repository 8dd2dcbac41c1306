-- The response and embeddings cache (aigateway/cache.py, SQL in aigateway/store/cache.py).
--
-- Why PostgreSQL: on Lambda every concurrent request is its own execution environment, so a cache
-- in memory would be empty for most of them; one table answers every environment alike.
--
-- One row per entry. `key` is the SHA-256 of everything that shapes the answer (cache.py says what);
-- `kind` is 'chat' (the upstream's answer as JSON) or 'embedding' (one input's vector as float32
-- bytes). `user_id` is the caller whose call filled the entry (purge per user). The tokens and cost
-- are what the upstream charged for it: a hit's usage row carries them as the saving.
CREATE TABLE IF NOT EXISTS {s}.cache_entries (
    key            bytea PRIMARY KEY,
    kind           text NOT NULL CHECK (kind IN ('chat', 'embedding')),
    model_id       text NOT NULL,
    user_id        text,
    body           bytea NOT NULL,
    input_tokens   integer NOT NULL DEFAULT 0,
    output_tokens  integer NOT NULL DEFAULT 0,
    cost_usd       numeric(20, 10),
    bytes          integer NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS cache_entries_expires_idx ON {s}.cache_entries (expires_at);
CREATE INDEX IF NOT EXISTS cache_entries_created_idx ON {s}.cache_entries (created_at);
CREATE INDEX IF NOT EXISTS cache_entries_model_idx ON {s}.cache_entries (model_id);
CREATE INDEX IF NOT EXISTS cache_entries_user_idx ON {s}.cache_entries (user_id);

-- Per-configuration caching: {"ttlSeconds": 3600, "scope": "project" | "user"}; NULL = off.
ALTER TABLE {s}.configs ADD COLUMN IF NOT EXISTS cache jsonb;

-- The daily rollups carry the cache's figures too, so the usage summary (hits, hit rate, savings)
-- stays equal to the raw rows. Days rolled up before this migration hold no cached rows (nothing
-- wrote `cached` or `saved_usd` before the cache existed), so the default 0 is exact for them.
ALTER TABLE {s}.usage_daily ADD COLUMN IF NOT EXISTS cached_requests bigint NOT NULL DEFAULT 0;
ALTER TABLE {s}.usage_daily ADD COLUMN IF NOT EXISTS saved_usd numeric(30, 10) NOT NULL DEFAULT 0;
