"""A day of simulated time through the CLI, as a user would tell it (not run by CI):
target_size + burst + idle_suspend (cooldowns on each) on one cluster, activity bursts, one
wipe-state, one failed persist, one 40-minute query. Every cycle is the real `mz-schedctl apply`
in a subprocess against an emulator at Materialize's statement-log flush lag; it prints one line
per cycle and the audit's action log at the end. Read every line: no flap, no orphan, every
refused query served again within two cycles.

    .venv/bin/python scripts/story_day.py
"""

import json
import os
import subprocess
import sys
import threading
import time

import psycopg

from mz_schedctl_provider.emulator.control import run_emulator

CLI = [sys.executable, "-m", "mz_schedctl_provider.cli"]
log = []


def cli(emu, *args, env=None):
    e = {**os.environ, **(env or {})}
    done = subprocess.run(
        [*CLI, *args, "--database-url", emu.url], capture_output=True, text=True, env=e, timeout=120
    )
    return done


def replicas(emu):
    return sorted(
        emu.execute(
            "SELECT r.name, r.size FROM mz_cluster_replicas r"
            " JOIN mz_clusters c ON c.id = r.cluster_id WHERE c.name = 'day'"
        )
    )


def now(emu):
    return emu.execute("SELECT now()")[0][0]


def user_query(emu):
    try:
        with psycopg.connect(emu.url, autocommit=True, application_name="analyst") as c:
            c.execute("SET cluster = day")
            c.execute("SELECT * FROM day_mv").fetchall()
        return "ok"
    except psycopg.Error as exc:
        return f"refused ({exc.sqlstate})"


with run_emulator(port=0, sample_rate=1.0) as emu:  # Materialize's flush lag (5 s)
    emu.execute("CREATE CLUSTER day REPLICAS (r1 (SIZE '25cc'))")
    emu.execute("CREATE TABLE day_t (a int)")
    emu.execute("INSERT INTO day_t VALUES (1),(2)")
    emu.execute("CREATE MATERIALIZED VIEW day_mv IN CLUSTER day AS SELECT count(*) FROM day_t")
    emu.execute("SELECT mz_emulator.set_hydration_delay('day', '5 minutes')")
    emu.execute("CREATE TABLE gate_t (a int)")
    with emu.backend.connect_admin() as admin:
        admin.execute(
            "CREATE FUNCTION public.gate() RETURNS bigint LANGUAGE plpgsql AS"
            " $$ BEGIN RETURN (SELECT count(*) FROM public.gate_t); END $$"
        )
    cid = emu.execute("SELECT id FROM mz_clusters WHERE name = 'day'")[0][0]
    assert cli(emu, "init").returncode == 0
    for kind, cfg in [
        ("target_size", {"target_size": "100cc", "cooldown_s": 600}),
        ("burst", {"burst_replica_size": "400cc", "cooldown_s": 300, "max_burst_s": 3600}),
        (
            "idle_suspend",
            {"idle_after_s": 1800, "cooldown_s": 3600, "allow_with_maintained_objects": True},
        ),
    ]:
        emu.execute(
            "INSERT INTO mz_cluster_strategies (cluster_id, strategy_type, config)"
            " VALUES (%s, %s, %s::jsonb)",
            (cid, kind, json.dumps(cfg)),
        )
    refused_at = []  # cycle index of refused queries
    cycles = []
    state = {"long": None}

    def cycle(tag="", env=None):
        done = cli(emu, "apply", "--json", env=env)
        docs = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
        acts = []
        if len(docs) >= 2:
            plan, res = docs[0], docs[1]
            out = {r["action_id"]: r["outcome"] for r in res.get("results", [])}
            for c in plan["clusters"]:
                for a in c["actions"]:
                    acts.append(
                        (
                            a["kind"],
                            a["replica_name"] or a.get("alter"),
                            a["status"],
                            out.get(a["id"]),
                            a.get("codes"),
                        )
                    )
            findings = [f["message"][:90] for c in plan["clusters"] for f in c["findings"]] + [
                e[:90] for c in plan["clusters"] for e in c["errors"]
            ]
        else:
            findings = [done.stderr.strip()[:200]]
        t = now(emu)
        cycles.append((t, tag, done.returncode, acts, replicas(emu), findings))
        print(
            f"{t:%H:%M:%S} {tag:<14} exit={done.returncode}"
            f" acts={[(k, n, o) for k, n, s, o, _c in acts if s == 'planned' or o]}"
            f" replicas={replicas(emu)} {('! ' + '; '.join(findings)) if findings else ''}"
        )
        return done

    def advance(s):
        emu.advance(s)

    # 08:00 .. start
    for _i in range(6):
        cycle("start")
        advance(120)
    # 09:00-10:00: activity bursts every 5 minutes
    for _i in range(12):
        r = user_query(emu)
        if r != "ok":
            refused_at.append(len(cycles))
            print("   query:", r)
        advance(150)
        cycle("busy")
        advance(150)
        cycle("busy")
    # quiet until suspend (idle 1800 s + lag)
    for _i in range(20):
        advance(120)
        cycle("quiet")
    # refused query on the suspended cluster
    r = user_query(emu)
    print("   query:", r)
    if r != "ok":
        refused_at.append(len(cycles))
    for _i in range(4):
        advance(120)
        cycle("after query")
    # wipe-state
    print("   wipe-state:", cli(emu, "wipe-state").stdout.strip())
    for _i in range(4):
        advance(120)
        cycle("after wipe")
    # long query: 40 minutes
    admin = emu.backend.connect_admin()
    admin.execute("BEGIN")
    admin.execute("LOCK TABLE public.gate_t IN ACCESS EXCLUSIVE MODE")
    uc = psycopg.connect(emu.url, autocommit=True, application_name="analyst")
    uc.execute("SET cluster = day")
    th = threading.Thread(target=lambda: uc.execute("SELECT public.gate() FROM day_t"), daemon=True)
    th.start()
    time.sleep(1)
    for _i in range(20):
        advance(120)
        cycle("long query")
    admin.execute("ROLLBACK")
    th.join(30)
    uc.close()
    admin.close()
    # failed persist in a cycle with an action: make target_size want 200cc
    emu.execute(
        "INSERT INTO mz_cluster_strategies (cluster_id, strategy_type, config)"
        " VALUES (%s, 'target_size', %s::jsonb)",
        (cid, json.dumps({"target_size": "200cc", "cooldown_s": 600})),
    )
    emu.inject_fault(r"^\s*INSERT INTO .*mz_cluster_strategy_state", "error", "disk full")
    cycle("failed persist")
    emu.execute("SELECT mz_emulator.clear_faults()")
    for _i in range(10):
        advance(120)
        cycle("after persist")
    # evening: idle, suspend, refused query, resume
    for _i in range(25):
        advance(120)
        cycle("evening")
    r = user_query(emu)
    print("   query:", r)
    if r != "ok":
        refused_at.append(len(cycles))
    for _i in range(4):
        advance(120)
        cycle("night query")
    for _i in range(25):
        advance(300)
        cycle("night")
    print("\nAUDIT (executed outcomes):")
    for row in emu.execute(
        "SELECT created_at, action_sql, executed, error_message FROM mz_cluster_strategy_actions"
        " WHERE decision_ctx->>'phase' = 'outcome' ORDER BY created_at"
    ):
        print(
            "  ",
            row[0].strftime("%H:%M:%S"),
            row[1],
            "ok" if row[2] else f"NOT executed {row[3] or ''}",
        )
    print("refused query cycles:", refused_at)
