-- Configurations (enabled models), usage, audit records and stored secrets.
-- Shapes follow InsForge's own AI tables (same column names) plus the gateway's own columns.

CREATE TABLE IF NOT EXISTS {s}.configs (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    input_modality   text[] NOT NULL DEFAULT '{text}',
    output_modality  text[] NOT NULL DEFAULT '{text}',
    provider         varchar(255) NOT NULL DEFAULT 'openrouter',
    model_id         varchar(255) NOT NULL UNIQUE,
    system_prompt    text,
    fallback_models  text[] NOT NULL DEFAULT '{}',
    is_active        boolean NOT NULL DEFAULT true,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT configs_input_modality_nonempty CHECK (cardinality(input_modality) > 0),
    CONSTRAINT configs_output_modality_nonempty CHECK (cardinality(output_modality) > 0),
    CONSTRAINT configs_modalities_known CHECK (
        input_modality <@ ARRAY['text','image','audio','video','file']::text[]
        AND output_modality <@ ARRAY['text','image','audio','video','file','embeddings']::text[])
);
CREATE INDEX IF NOT EXISTS configs_active_idx ON {s}.configs (model_id) WHERE is_active;

CREATE TABLE IF NOT EXISTS {s}.usage (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    request_id        text UNIQUE,
    config_id         uuid REFERENCES {s}.configs (id) ON DELETE NO ACTION,
    model_id          varchar(255),
    kind              text NOT NULL DEFAULT 'chat',
    input_tokens      integer,
    output_tokens     integer,
    image_count       integer,
    image_resolution  text,
    user_id           text,
    cost_usd          numeric(20, 10),
    key_source        text,
    latency_ms        integer,
    created_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS usage_created_at_idx ON {s}.usage (created_at DESC);
CREATE INDEX IF NOT EXISTS usage_config_idx ON {s}.usage (config_id);
CREATE INDEX IF NOT EXISTS usage_model_idx ON {s}.usage (model_id);
CREATE INDEX IF NOT EXISTS usage_user_idx ON {s}.usage (user_id, created_at DESC);

CREATE TABLE IF NOT EXISTS {s}.audit_logs (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    actor       text NOT NULL,
    action      text NOT NULL,
    module      text NOT NULL DEFAULT 'AI',
    details     jsonb NOT NULL DEFAULT '{}'::jsonb,
    ip_address  text,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS audit_created_at_idx ON {s}.audit_logs (created_at DESC);
CREATE INDEX IF NOT EXISTS audit_action_idx ON {s}.audit_logs (action, created_at DESC);

-- Wrapped (encrypted) secrets such as the BYOK OpenRouter key. Never plaintext.
CREATE TABLE IF NOT EXISTS {s}.secrets (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    key               text NOT NULL UNIQUE,
    value_ciphertext  bytea NOT NULL,
    wrapper           text NOT NULL,
    masked_value      text,
    is_active         boolean NOT NULL DEFAULT true,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    last_used_at      timestamptz
);
