-- A usage row and its quota charge are now written by one statement (store/usage.py, `settle`),
-- live and on replay alike, so the flag says whether the row's charge was counted. Existing values
-- keep their meaning: under the earlier code a row whose copy still waits in the spool with a
-- subject was never charged live (the live charge followed only a row that was known to land), so
-- false stays "owed by its replay", and rows charged live never have such a copy.
ALTER TABLE {s}.usage RENAME COLUMN charge_replayed TO quota_charged;

-- Settling calls (store/usage.py, `settle`): their usage rows, their quota charges and the release
-- of their holds, in ONE statement — one round trip and one commit per group of calls, and a row and
-- its charge land together or not at all. A PL/pgSQL function so that PostgreSQL plans the
-- statement once per connection even where protocol-level prepared statements are off (behind RDS
-- Proxy): planning it on every call costs about as much as running it.
--
-- A row is charged exactly once: when it is inserted with a quota subject, or when a copy with a
-- subject arrives (a replayed spool record) and the row, which landed without its charge, is not
-- charged yet (`quota_charged`). Charges go to the day and month of the call (`created_at`), per
-- subject, and to the project; counters are upserted in a fixed order (scope, subject, period), so
-- concurrent settles lock them in the same order.
CREATE OR REPLACE FUNCTION {s}.settle_calls(
    p_request_id text[],
    p_config_id uuid[],
    p_model_id text[],
    p_kind text[],
    p_input_tokens integer[],
    p_output_tokens integer[],
    p_image_count integer[],
    p_image_resolution text[],
    p_user_id text[],
    p_cost_usd numeric[],
    p_key_source text[],
    p_latency_ms integer[],
    p_created_at timestamptz[],
    p_subject text[],
    p_hold_id bigint[])
RETURNS void LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    WITH r AS (
        SELECT * FROM unnest(p_request_id, p_config_id, p_model_id, p_kind, p_input_tokens, p_output_tokens,
                             p_image_count, p_image_resolution, p_user_id, p_cost_usd, p_key_source, p_latency_ms,
                             p_created_at, p_subject, p_hold_id)
               AS r (request_id, config_id, model_id, kind, input_tokens, output_tokens, image_count,
                     image_resolution, user_id, cost_usd, key_source, latency_ms, created_at, subject, hold_id)
    ), landed AS (
        INSERT INTO {s}.usage
            (request_id, config_id, model_id, kind, input_tokens, output_tokens, image_count, image_resolution,
             user_id, cost_usd, key_source, latency_ms, created_at, quota_charged)
        SELECT r.request_id, r.config_id, r.model_id, r.kind, NULLIF(r.input_tokens, 0), NULLIF(r.output_tokens, 0),
               NULLIF(r.image_count, 0), r.image_resolution, r.user_id, r.cost_usd, r.key_source, r.latency_ms,
               COALESCE(r.created_at, now()), r.subject IS NOT NULL
          FROM r
        ON CONFLICT (request_id) DO UPDATE SET quota_charged = true
         WHERE EXCLUDED.quota_charged AND NOT {s}.usage.quota_charged
        RETURNING request_id, created_at AT TIME ZONE 'UTC' AS at,
                  COALESCE(input_tokens, 0) + COALESCE(output_tokens, 0) AS tokens, COALESCE(cost_usd, 0) AS spend
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
