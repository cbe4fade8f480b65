"""The heavy mix's bench rules in DuckDB SQL, for the rulecheck benchmark.

Reads the JSON Lines file once, then runs each rule as a query, as close to
`rules.yaml` as SQL allows (the threshold with `distinct` as a self-join;
suppression is left out, which only makes DuckDB's work lighter). Prints the
number of matches per rule and the wall time.

    python3 duckdb_rules.py EVENTS.jsonl
"""

import sys
import time

import duckdb

path = sys.argv[1]
started = time.monotonic()
con = duckdb.connect()
con.execute(
    """
    CREATE TEMP TABLE ev AS
    SELECT j->>'$.id' AS id,
           j->>'$.type' AS type,
           CAST(j->>'$.effective_at' AS BIGINT) AS ts,
           j->>'$.actor.session.user.email' AS email,
           j->>'$.actor.session.ip_address' AS ip,
           j->>'$.actor.session.ip_address_details.country' AS country,
           j->>'$.actor.session.ip_address_details.city' AS city,
           j->>'$.actor.session.ip_address_details.asn' AS asn,
           j->>'$.actor.session.user_agent' AS ua,
           j
    FROM (SELECT json AS j FROM read_ndjson_objects(?))
    """,
    [path],
)
rules = {
    "heavy.key_created_after_hours": """
        SELECT id FROM ev WHERE type = 'api_key.created' AND country <> 'US' AND (
          isodow(timezone('America/New_York', to_timestamp(ts))) > 5
          OR hour(timezone('America/New_York', to_timestamp(ts))) NOT BETWEEN 8 AND 18)""",
    "heavy.broad_key": """
        SELECT id FROM ev WHERE type = 'api_key.created'
          AND list_has_any(CAST(j->'$."api_key.created".data.scopes' AS VARCHAR[]), ['api.all', 'all', 'admin'])""",
    "heavy.invite_external": """
        SELECT id FROM ev WHERE type = 'invite.sent'
          AND (NOT ends_with(j->>'$."invite.sent".data.email', '@example.com')
               OR j->>'$."invite.sent".data.role' = 'owner')""",
    "heavy.user_role": """
        SELECT id FROM ev WHERE type = 'user.updated'
          AND j->>'$."user.updated".changes_requested.role' = 'owner' AND email <> 'root@example.com'""",
    "heavy.failed_from_many_ips": """
        WITH f AS (SELECT id, email, ip, ts FROM ev WHERE type = 'login.failed')
        SELECT a.id FROM f a JOIN f b ON a.email = b.email AND b.ts BETWEEN a.ts - 600 AND a.ts
        GROUP BY a.id HAVING count(DISTINCT b.ip) >= 3""",
    "heavy.login_unexpected_country": """
        SELECT id, email || city || ip || ua FROM ev WHERE type = 'login.succeeded'
          AND country NOT IN ('US', 'CA', 'GB', 'DE')""",
    "heavy.hosting_asn": """
        SELECT id FROM ev WHERE type = 'login.succeeded' AND asn IN ('14061', '24940')""",
}
for rule, sql in rules.items():
    n = con.execute(f"SELECT count(*) FROM ({sql})").fetchone()[0]
    print(f"{rule}: {n} matches")
print(f"duckdb wall {time.monotonic() - started:.2f}s")
