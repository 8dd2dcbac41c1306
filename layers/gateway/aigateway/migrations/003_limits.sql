-- Rate limits, quotas and the per-configuration content policy (docs/api.md#limits-and-quotas, docs/adr/0003).
--
-- The counters live here, not in process memory, so a limit holds across any number of Lambda
-- instances; each generation request costs one statement against them (aigateway/store/limits.py).

-- What the admin set: the project row ('project') holds the per-user defaults, the project-wide
-- limits and whether admin keys are exempt. JSON because the shape is validated by the API layer
-- and read whole into a per-process cache; nothing queries inside it.
CREATE TABLE IF NOT EXISTS {s}.limit_settings (
    id          text PRIMARY KEY DEFAULT 'project' CHECK (id = 'project'),
    body        jsonb NOT NULL,
    updated_by  text,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Per-user overrides of the per-user defaults: only the keys present override, null = unlimited.
CREATE TABLE IF NOT EXISTS {s}.limit_overrides (
    user_id     text PRIMARY KEY,
    body        jsonb NOT NULL,
    updated_by  text,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Requests per fixed one-minute window. scope = 'user' (subject = the rate-limit identity) or
-- 'project' (subject = ''). One upsert per request; rows older than a few minutes are deleted.
CREATE TABLE IF NOT EXISTS {s}.rate_counters (
    scope         text NOT NULL,
    subject       text NOT NULL,
    window_start  timestamptz NOT NULL,
    hits          integer NOT NULL DEFAULT 0,
    PRIMARY KEY (scope, subject, window_start)
);
CREATE INDEX IF NOT EXISTS rate_counters_window_idx ON {s}.rate_counters (window_start);

-- Tokens and spend per UTC day and UTC month, added after each answer, read before each call.
CREATE TABLE IF NOT EXISTS {s}.quota_counters (
    scope         text NOT NULL,
    subject       text NOT NULL,
    period        text NOT NULL CHECK (period IN ('day', 'month')),
    period_start  date NOT NULL,
    tokens        bigint NOT NULL DEFAULT 0,
    spend_usd     numeric(20, 10) NOT NULL DEFAULT 0,
    PRIMARY KEY (scope, subject, period, period_start)
);
CREATE INDEX IF NOT EXISTS quota_counters_period_idx ON {s}.quota_counters (period, period_start);

-- Per-configuration content policy: {"denyPatterns": [...], "moderation": bool}; NULL = off.
ALTER TABLE {s}.configs ADD COLUMN IF NOT EXISTS content_policy jsonb;
