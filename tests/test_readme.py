"""The README's commands and SQL run here, so the docs cannot drift from the code.

Blocks that cannot run on these machines (docker compose, GRANTs on a real Materialize, pip
from a git URL) say so in the README and are skipped here by their section."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from mz_schedctl_provider.emulator.control import Emulator
from mz_schedctl_provider.runtime import cycle
from mz_schedctl_provider.runtime.db import Database
from mz_schedctl_provider.runtime.store import Store

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _blocks(language: str, section: str) -> list[str]:
    """Fenced blocks of one language inside the section whose heading starts with `section`."""
    start = README.index(f"\n## {section}") if f"\n## {section}" in README else None
    if start is None:
        start = README.index(f"\n### {section}")
    end = README.find("\n## ", start + 1)
    body = README[start : end if end != -1 else None]
    return re.findall(rf"```{language}\n(.*?)```", body, re.S)


def _statements(block: str) -> list[str]:
    lines = [line for line in block.splitlines() if not line.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";\n") if s.strip().rstrip(";")]


def test_quick_start_is_exactly_two_commands_that_exist() -> None:
    (block,) = _blocks("bash", "Quick start")
    commands = [line.split("#")[0].strip() for line in block.splitlines() if line.strip()]
    assert commands == ["./scripts/demo.sh", "./scripts/test.sh"]
    for command in commands:
        path = ROOT / command
        assert path.exists() and path.stat().st_mode & 0o111, f"{command} is not executable"
    ci = (ROOT / ".ci" / "run").read_text()
    assert "./scripts/demo.sh" in ci and "./scripts/test.sh" in ci, ".ci/run runs both"


def test_cli_commands_in_the_readme_exist() -> None:
    documented = set(re.findall(r"`mz-schedctl ([a-z-]+)", README))
    assert {"plan", "apply", "wipe-state", "init", "status"} <= documented
    for command in sorted(documented):
        result = subprocess.run(
            [sys.executable, "-m", "mz_schedctl_provider.cli", command, "--help"],
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, f"mz-schedctl {command}: {result.stderr}"


def test_strategy_examples_are_valid_configs(emulator: Emulator) -> None:
    """The SQL of "Configure strategies" and "Time windows" runs, and every row it inserts
    validates: no cluster gets a config error."""
    names = ["readme_a", "readme_b", "readme_c", "readme_d"]
    for name in names:
        emulator.execute(f"CREATE CLUSTER {name} REPLICAS (r1 (SIZE = '25cc'))")
    ids = {
        n: emulator.execute("SELECT id FROM mz_clusters WHERE name = %s", (n,))[0][0] for n in names
    }
    db = Database.connect(emulator.url)
    try:
        Store(db).bootstrap()
        # The README's examples name clusters u2..u5 (a fresh instance's first clusters).
        mapping = {f"'u{i}'": f"'{ids[n]}'" for i, n in enumerate(names, start=2)}
        blocks = _blocks("sql", "Configure strategies") + _blocks("sql", "Time windows")
        ran = 0
        for block in blocks:
            for statement in _statements(block):
                for old, new in mapping.items():
                    statement = statement.replace(old, new)
                db.execute(statement)
                ran += 1
        assert ran >= 7
        signals = cycle.collect(db, cycle.CycleSettings())
        plan = cycle.decide(signals, cycle_id="readme", dry_run=True, experimental=True)
    finally:
        db.close()
    planned = {c["cluster_name"]: c for c in plan["clusters"]}
    # u3's idle_suspend is turned off by the example's newer row with enabled=false.
    assert "readme_b" not in planned
    on = [n for n in names if n != "readme_b"]
    assert set(on) <= set(planned), f"clusters in the plan: {sorted(planned)}"
    for name in on:
        assert planned[name]["errors"] == [], f"{name}: {planned[name]['errors']}"


def test_history_queries_run_after_a_cycle(emulator: Emulator) -> None:
    emulator.execute("CREATE CLUSTER readme_h REPLICAS (r1 (SIZE = '25cc'))")
    cid = emulator.execute("SELECT id FROM mz_clusters WHERE name = 'readme_h'")[0][0]
    db = Database.connect(emulator.url)
    try:
        store = Store(db)
        store.bootstrap()
        db.execute(
            "INSERT INTO mz_cluster_strategies (cluster_id, strategy_type, config)"
            " VALUES (%s, 'target_size', '{\"target_size\": \"50cc\"}')",
            (cid,),
        )
        settings = cycle.CycleSettings()
        assert cycle.claim_lease(db, settings, cycle_id="readme-h").acquired
        plan = cycle.decide(cycle.collect(db, settings), cycle_id="readme-h", dry_run=False)
        cycle.persist(plan, cycle.apply(plan, db, settings), db, settings)
        (block,) = _blocks("sql", "Dry run, kill switch, history")
        results = [db.query(statement) for statement in _statements(block)]
    finally:
        db.close()
    audit, cost, state = results
    assert any(row[1] == "readme_h" and row[2] == "outcome" and row[3] for row in audit)
    assert cost, "the cost query lists the executed action"
    assert any(row[0] == cid for row in state)


@pytest.mark.parametrize(
    "section", ["Install into an existing Airflow", "Privileges in Materialize"]
)
def test_blocks_that_cannot_run_here_say_so(section: str) -> None:
    start = README.index(f"## {section}")
    body = README[start : README.find("\n## ", start + 1)]
    if section == "Privileges in Materialize":
        assert "Not runnable here" in body
    else:
        assert "git+<this repository>" in body  # a placeholder, not a command to paste


def test_install_steps_come_in_the_order_a_user_needs() -> None:
    """Install, connection (with the test-connection setting), tables, strategies, preview,
    unpause; the tables exist before the first strategy INSERT anywhere in the README."""
    start = README.index("## Install into an existing Airflow")
    body = README[start : README.index("\n## ", start + 1)]
    steps = [
        "**1. Install**",
        "**2. The connection**",
        "**3. Create the controller's tables**",
        "**4. Strategies**",
        "**5. Preview**",
        "**6. Unpause**",
    ]
    positions = [body.index(step) for step in steps]
    assert positions == sorted(positions), dict(zip(steps, positions, strict=True))
    connection = body[positions[1] : positions[2]]
    assert "AIRFLOW__CORE__TEST_CONNECTION=Enabled" in connection
    assert README.index("mz-schedctl init") < README.index("INSERT INTO mz_cluster_strategies")
    preview = body[positions[4] : positions[5]]
    assert "mz_schedctl_plan" in preview  # the preview DAG: a dry run that claims no lease
    # The DAGs come from the package: Airflow 3's bundle and Airflow 2's stub files.
    install = body[positions[0] : positions[1]]
    assert "mz-schedctl airflow-dags --bundle-config" in install
    assert "mz-schedctl airflow-dags --write" in install
    assert "copy dags/" not in README.lower()


def test_every_setting_is_documented_with_its_fallback() -> None:
    from mz_schedctl_provider.settings import SETTINGS

    (section,) = [
        README[i : README.index("\n### ", i + 1)]
        for i in [README.index("### Settings (`[mz_schedctl]`)")]
    ]
    for spec in SETTINGS.values():
        assert f"| `{spec.key}` |" in section, spec.key
        assert f"`{spec.env}`" in section, spec.env


def test_the_sensor_has_an_example_dag() -> None:
    (block,) = _blocks("python", "Wait for hydration in your own DAGs")
    assert "MaterializeHydrationSensor(" in block
    compile(block, "README sensor example", "exec")  # parsed by Airflow in tests/airflow
