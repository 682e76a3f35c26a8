-- Recompute the uptime rows a publish touching [$lo, $hi) can change, per environment: from $lo (or the minute after the environment's previous last minute, if earlier) to four weeks after $hi (or after its previous first minute, if later), since a minute's usual traffic is read from the four weeks before it.
DELETE FROM uptime_refresh_windows;
INSERT INTO uptime_refresh_windows
SELECT n.environment,
       CASE WHEN o.environment IS NULL THEN n.first_m
            ELSE least(epoch($lo::TIMESTAMPTZ)::BIGINT // 60, o.last_m + 1) END,
       CASE WHEN o.environment IS NULL THEN n.last_m
            ELSE greatest(epoch($hi::TIMESTAMPTZ)::BIGINT // 60, o.first_m) + 4 * 10080 END
FROM (
    SELECT environment, epoch(min(minute))::BIGINT // 60 AS first_m,
           epoch(max(minute))::BIGINT // 60 AS last_m
    FROM rollup_minutes GROUP BY ALL
) n
LEFT JOIN (
    SELECT environment, epoch(first_minute)::BIGINT // 60 AS first_m,
           epoch(last_minute)::BIGINT // 60 AS last_m
    FROM rollup_uptime_bounds
) o USING (environment);
DELETE FROM rollup_uptime_bounds;
INSERT INTO rollup_uptime_bounds
SELECT environment, min(minute), max(minute) FROM rollup_minutes GROUP BY ALL;
DELETE FROM rollup_uptime_minutes AS u USING uptime_refresh_windows w
WHERE u.environment = w.environment
  AND u.minute >= to_timestamp(w.lo_minute * 60) AND u.minute <= to_timestamp(w.hi_minute * 60);
INSERT INTO rollup_uptime_minutes SELECT * FROM uptime_minute_rows();
DELETE FROM uptime_refresh_windows;
