-- Batches: many chat or embeddings calls submitted at once and run by the gateway's own worker.
-- A batch keeps the identity of whoever submitted it (role, user, email, admin key, address, the
-- forwarded upstream headers): its items run as that caller, whatever an item says. Each item is
-- keyed (batch_id, custom_id); its `idx` makes the usage row's request id (`batch:<id>:<idx>`),
-- so a redelivered item settles once.
CREATE TABLE IF NOT EXISTS {s}.batches (
    id text PRIMARY KEY,
    dialect text NOT NULL DEFAULT 'native',          -- native | openai: the shape results are read in
    endpoint text,                                   -- openai: the endpoint every line names
    input_file_id text,
    metadata jsonb,
    owner_role text NOT NULL,
    owner_user_id text,
    owner_email text,
    owner_via_api_key boolean NOT NULL DEFAULT false,
    owner_ip text,
    upstream_headers jsonb NOT NULL DEFAULT '{}'::jsonb,
    status text NOT NULL DEFAULT 'in_progress',      -- in_progress | cancelling | cancelled | completed
    total integer NOT NULL,
    stopped_by text,                                 -- QUOTA_EXCEEDED once the quota ran out mid-batch
    upstream text NOT NULL DEFAULT 'gateway',        -- gateway: each item a live call; openrouter: one upstream batch
    upstream_batch_id text,                          -- openrouter: its batch id, polled until it ends
    upstream_key_source text,                        -- openrouter: which key submitted it (env, cloud, byok)
    created_at timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz,
    cancelled_at timestamptz
);
CREATE INDEX IF NOT EXISTS batches_owner_idx ON {s}.batches (owner_user_id, created_at DESC);
CREATE INDEX IF NOT EXISTS batches_open_idx ON {s}.batches (status) WHERE status IN ('in_progress', 'cancelling');
CREATE INDEX IF NOT EXISTS batches_upstream_idx ON {s}.batches (created_at)
    WHERE upstream_batch_id IS NOT NULL AND status IN ('in_progress', 'cancelling');

CREATE TABLE IF NOT EXISTS {s}.batch_items (
    batch_id text NOT NULL REFERENCES {s}.batches (id) ON DELETE CASCADE,
    custom_id text NOT NULL,
    idx integer NOT NULL,
    kind text NOT NULL,                              -- chat | embeddings
    body jsonb NOT NULL,
    status text NOT NULL DEFAULT 'pending',          -- pending | running | done | failed | cancelled
    status_code integer,
    model text,                                      -- the model asked for (answers are shaped with it)
    result jsonb,                                    -- the upstream answer, shaped when read
    error jsonb,                                     -- the contract's error body
    attempts integer NOT NULL DEFAULT 0,
    -- An item sent in an upstream batch is admitted at submission; its quota hold, quota subject
    -- and configuration wait here for the poll that settles it.
    hold_id bigint,
    charge_subject text,
    config_id uuid,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (batch_id, custom_id),
    UNIQUE (batch_id, idx)
);
CREATE INDEX IF NOT EXISTS batch_items_open_idx ON {s}.batch_items (batch_id) WHERE status IN ('pending', 'running');

-- Uploaded files (OpenAI's files API, purpose `batch`): the bytes live in the images bucket on AWS
-- and in a private local folder otherwise; the row says whose they are.
CREATE TABLE IF NOT EXISTS {s}.batch_files (
    id text PRIMARY KEY,
    owner_user_id text,
    owner_via_api_key boolean NOT NULL DEFAULT false,
    purpose text NOT NULL,
    filename text NOT NULL,
    bytes integer NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
