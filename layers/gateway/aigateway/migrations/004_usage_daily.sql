-- Daily usage rollups: one row per UTC day, model, configuration and user, built by the
-- scheduled usage_summary function (aigateway/rollup.py, SQL in aigateway/store/rollups.py) and
-- read by GET /api/ai/usage/summary for whole days, so a summary over months reads a few rows per
-- day instead of every call.
--
-- How the rollup stays exact and incremental:
-- * ai.usage.inserted_at is when a row reached the database. created_at is when the call happened,
--   which a replay from the usage spool keeps, so a late row can land in a day rolled up long ago;
--   inserted_at finds it.
-- * usage_rollup_state holds the watermark W and the last rolled-up day R. The invariant, kept by
--   every run in one transaction: for every day D <= R, usage_daily holds exactly the aggregate of
--   the usage rows of day D with inserted_at <= W. Rows of those days inserted after W are few
--   (the last hour's late arrivals) and the summary adds them from ai.usage.
-- * A run moves W forward only to a time before which every usage row is committed (it looks at
--   the oldest open transaction), recomputes the days that gained rows in (old W, new W] and the
--   days that became whole, and commits usage_daily and the new state together. Recomputing a day
--   from raw rows is idempotent; an advisory lock serialises concurrent runs.

-- now() as the first default fills existing rows without rewriting the table (they count as
-- inserted by this migration); new rows then take clock_timestamp(), the moment of the insert
-- itself rather than the start of its transaction.
ALTER TABLE {s}.usage ADD COLUMN IF NOT EXISTS inserted_at timestamptz NOT NULL DEFAULT now();
ALTER TABLE {s}.usage ALTER COLUMN inserted_at SET DEFAULT clock_timestamp();
CREATE INDEX IF NOT EXISTS usage_inserted_at_idx ON {s}.usage (inserted_at);

CREATE TABLE IF NOT EXISTS {s}.usage_daily (
    day            date NOT NULL,
    model_id       text,
    config_id      uuid,
    user_id        text,
    requests       bigint NOT NULL,
    input_tokens   bigint NOT NULL,
    output_tokens  bigint NOT NULL,
    total_tokens   bigint NOT NULL,
    image_count    bigint NOT NULL,
    cost_usd       numeric(30, 10) NOT NULL,
    -- Key columns cannot be NULL, and "no user" must stay apart from a user whose id is '', so
    -- the key is generated: NULL -> '' and a value v -> '=' || v (the same for the model).
    model_key      text GENERATED ALWAYS AS (COALESCE('=' || model_id, '')) STORED,
    config_key     uuid GENERATED ALWAYS AS (COALESCE(config_id, '00000000-0000-0000-0000-000000000000'::uuid)) STORED,
    user_key       text GENERATED ALWAYS AS (COALESCE('=' || user_id, '')) STORED,
    rolled_up_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (day, model_key, config_key, user_key)
);
CREATE INDEX IF NOT EXISTS usage_daily_user_idx ON {s}.usage_daily (user_id, day);
CREATE INDEX IF NOT EXISTS usage_daily_config_idx ON {s}.usage_daily (config_id, day);

-- One row (id 'usage_daily'); absent until the first run, which then rolls up all history.
CREATE TABLE IF NOT EXISTS {s}.usage_rollup_state (
    id              text PRIMARY KEY DEFAULT 'usage_daily' CHECK (id = 'usage_daily'),
    watermark       timestamptz NOT NULL,
    rolled_through  date NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
