"""How a run starts its locust processes: argv from the settings, secrets by environment."""

from __future__ import annotations

from pathlib import Path

from bench.child_settings import WorkerSettings
from bench.run import _commands, child_environ
from bench.runtime import RunSpec
from bench.settings import BenchSettings
from farm.settings import load


def _bench_options(argv: list[str]) -> WorkerSettings:
    """The `--bench-*` options of a locust command line, read back with their settings class."""
    ours = [
        a
        for i, a in enumerate(argv)
        if a.startswith("--bench-") or argv[i - 1].startswith("--bench-")
    ]
    return load(WorkerSettings, ours, {}).settings


def test_workers_share_the_quota_and_the_rate(tmp_path: Path) -> None:
    cfg = BenchSettings(requests=10, workers=3)
    spec = RunSpec("r", "proxy", "http://p:1", "m", 4, str(tmp_path), cfg)
    master, *workers = _commands(spec, tmp_path / "spec.json", tmp_path)
    assert "--master" in master and "--expect-workers" in master
    assert _bench_options(master) == WorkerSettings(bench_spec=tmp_path / "spec.json")
    options = [_bench_options(cmd) for cmd in workers]
    assert [o.bench_worker for o in options] == [0, 1, 2]
    assert sum(o.bench_quota for o in options) == 10
    assert {o.bench_rate_share for o in options} == {1 / 3}
    assert all(cmd[-1] == "HttpStream" for cmd in [master, *workers])


def test_one_process_gets_the_whole_quota(tmp_path: Path) -> None:
    spec = RunSpec("r", "nkn", None, "m", 2, str(tmp_path), BenchSettings(requests=7))
    (cmd,) = _commands(spec, tmp_path / "spec.json", tmp_path)
    assert _bench_options(cmd).bench_quota == 7 and cmd[-1] == "NknStream"
    assert "--headless" in cmd and "-t" not in cmd


def test_locust_gets_the_key_by_environment_and_none_of_the_bench_variables() -> None:
    cfg = BenchSettings(api_key="k")
    env = child_environ({"PATH": "/bin", "BENCH_MODEL": "stale", "FARM_API_KEY": "old"}, cfg)
    assert env == {"PATH": "/bin", "FARM_API_KEY": "k"}
