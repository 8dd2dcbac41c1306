-- settle_calls takes its calls as ONE jsonb array of objects (the keys are store/usage.py's
-- UsageRecord fields) instead of eighteen parallel arrays: the driver adapts eighteen list
-- parameters element by element in Python, which cost more of the gateway's time per call than
-- the statement's own planning did, where one JSON document is serialised in a couple of
-- microseconds. What the statement does is unchanged (migrations 011 and 012 explain it): the rows
-- land, each is charged once to its subject and the project, the holds are dropped.
CREATE OR REPLACE FUNCTION {s}.settle_calls(p_calls jsonb)
RETURNS void LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    WITH r AS (
        SELECT request_id, config_id, model_id, kind, input_tokens, output_tokens, image_count, image_resolution,
               user_id, cost_usd, key_source, latency_ms, created_at, charge_subject AS subject, hold_id, cached,
               saved_usd, batch_id
          FROM jsonb_to_recordset(p_calls)
               AS x (request_id text, config_id uuid, model_id text, kind text, input_tokens integer,
                     output_tokens integer, image_count integer, image_resolution text, user_id text,
                     cost_usd numeric, key_source text, latency_ms integer, created_at timestamptz,
                     charge_subject text, hold_id bigint, cached boolean, saved_usd numeric, batch_id text)
    ), landed AS (
        INSERT INTO {s}.usage
            (request_id, config_id, model_id, kind, input_tokens, output_tokens, image_count, image_resolution,
             user_id, cost_usd, key_source, latency_ms, created_at, quota_charged, cached, saved_usd, batch_id)
        SELECT r.request_id, r.config_id, r.model_id, r.kind, NULLIF(r.input_tokens, 0), NULLIF(r.output_tokens, 0),
               NULLIF(r.image_count, 0), r.image_resolution, r.user_id, r.cost_usd, r.key_source, r.latency_ms,
               COALESCE(r.created_at, now()), r.subject IS NOT NULL,
               COALESCE(r.cached, false), r.saved_usd, r.batch_id
          FROM r
        ON CONFLICT (request_id) DO UPDATE SET quota_charged = true
         WHERE EXCLUDED.quota_charged AND NOT {s}.usage.quota_charged
        RETURNING request_id, created_at AT TIME ZONE 'UTC' AS at,
                  CASE WHEN cached THEN 0 ELSE COALESCE(input_tokens, 0) + COALESCE(output_tokens, 0) END AS tokens,
                  CASE WHEN cached THEN 0 ELSE COALESCE(cost_usd, 0) END AS spend
    ), due AS (
        SELECT r.subject, p.period, p.start, SUM(l.tokens) AS tokens, SUM(l.spend) AS spend
          FROM landed l JOIN r USING (request_id)
         CROSS JOIN LATERAL (VALUES ('day', l.at::date), ('month', date_trunc('month', l.at)::date)) AS p (period, start)
         WHERE r.subject IS NOT NULL
         GROUP BY r.subject, p.period, p.start
        HAVING SUM(l.tokens) > 0 OR SUM(l.spend) > 0
    ), released AS (
        DELETE FROM {s}.quota_holds WHERE id IN (SELECT hold_id FROM r WHERE hold_id IS NOT NULL)
    ), users AS (
        INSERT INTO {s}.quota_counters AS c (scope, subject, period, period_start, tokens, spend_usd)
        SELECT 'user', d.subject, d.period, d.start, d.tokens, d.spend FROM due d ORDER BY d.subject, d.period, d.start
        ON CONFLICT (scope, subject, period, period_start) DO UPDATE
           SET tokens = c.tokens + EXCLUDED.tokens, spend_usd = c.spend_usd + EXCLUDED.spend_usd
    )
    INSERT INTO {s}.quota_counters AS c (scope, subject, period, period_start, tokens, spend_usd)
    SELECT 'project', '', d.period, d.start, SUM(d.tokens), SUM(d.spend) FROM due d
     GROUP BY d.period, d.start ORDER BY d.period, d.start
    ON CONFLICT (scope, subject, period, period_start) DO UPDATE
       SET tokens = c.tokens + EXCLUDED.tokens, spend_usd = c.spend_usd + EXCLUDED.spend_usd;
END
$$;

-- The array form stays for code of the previous release still running during a deploy; it now
-- hands its calls to the jsonb form, so there is one definition of what settling does.
CREATE OR REPLACE FUNCTION {s}.settle_calls(
    p_request_id text[], p_config_id uuid[], p_model_id text[], p_kind text[], p_input_tokens integer[],
    p_output_tokens integer[], p_image_count integer[], p_image_resolution text[], p_user_id text[],
    p_cost_usd numeric[], p_key_source text[], p_latency_ms integer[], p_created_at timestamptz[],
    p_subject text[], p_hold_id bigint[], p_cached boolean[], p_saved_usd numeric[], p_batch_id text[])
RETURNS void LANGUAGE sql VOLATILE AS $$
    SELECT {s}.settle_calls(COALESCE(jsonb_agg(jsonb_build_object(
               'request_id', r.request_id, 'config_id', r.config_id, 'model_id', r.model_id, 'kind', r.kind,
               'input_tokens', r.input_tokens, 'output_tokens', r.output_tokens, 'image_count', r.image_count,
               'image_resolution', r.image_resolution, 'user_id', r.user_id, 'cost_usd', r.cost_usd,
               'key_source', r.key_source, 'latency_ms', r.latency_ms, 'created_at', r.created_at,
               'charge_subject', r.subject, 'hold_id', r.hold_id, 'cached', r.cached, 'saved_usd', r.saved_usd,
               'batch_id', r.batch_id)), '[]'::jsonb))
      FROM unnest(p_request_id, p_config_id, p_model_id, p_kind, p_input_tokens, p_output_tokens, p_image_count,
                  p_image_resolution, p_user_id, p_cost_usd, p_key_source, p_latency_ms, p_created_at, p_subject,
                  p_hold_id, p_cached, p_saved_usd, p_batch_id)
           AS r (request_id, config_id, model_id, kind, input_tokens, output_tokens, image_count, image_resolution,
                 user_id, cost_usd, key_source, latency_ms, created_at, subject, hold_id, cached, saved_usd, batch_id)
$$;
