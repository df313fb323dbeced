"""The bench's settings classes: flags, variables, deprecated spellings, one-line errors, and
the argv a parent hands a child (`load(cls, to_argv(s), child_env(s)).settings == s`)."""

from __future__ import annotations

import string
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from bench.child_settings import NknPeerSettings, WorkerSettings
from bench.cli import main
from bench.nkn_bench import NknBenchSettings
from bench.proxy_bench import ProxyBenchSettings
from bench.settings import TARGETS, BenchSettings, DemoSettings, ReportSettings
from farm.settings import ServiceSettings, SettingsError, child_env, load, to_argv
from farm.settings.load import validate


def bench(argv: list[str], environ: dict[str, str] | None = None) -> BenchSettings:
    return load(BenchSettings, argv, environ or {}).settings


def test_flags_and_environment_build_the_settings() -> None:
    cfg = bench(
        ["--target", "all", "--sweep", "1,2,4", "--duration", "2m", "--slo-ttft-ms", "500"],
        {"FARM_API_KEY": "k", "BENCH_PROXY_URL": "http://farm:8080", "BENCH_MODEL": "m"},
    )
    assert cfg.target == ("direct", "proxy", "nkn") and cfg.stream_counts == (1, 2, 4)
    assert (cfg.duration_s, cfg.slo_ttft_ms, cfg.api_key) == (120.0, 500.0, "k")
    assert (cfg.proxy_endpoint, cfg.model) == ("http://farm:8080", "m")
    assert cfg.record()["api_key"] == "***"  # never written to meta.json
    assert "k" not in to_argv(cfg) and child_env(cfg) == {"FARM_API_KEY": "k"}


def test_a_flag_beats_its_variable() -> None:
    cfg = bench(["--proxy-url", "http://flag:1", "--model", "f"], {"BENCH_PROXY_URL": "http://e:2"})
    assert (cfg.proxy_url, cfg.model) == ("http://flag:1", "f")


def test_url_goes_to_the_chosen_target() -> None:
    direct = bench(["--target", "direct", "--url", "http://b:1"])
    assert (direct.direct_endpoint, direct.proxy_endpoint) == (
        "http://b:1",
        "http://127.0.0.1:8080",
    )
    assert bench(["--url", "http://p:2"]).proxy_endpoint == "http://p:2"
    assert bench([], {"BENCH_DIRECT_URL": "http://d:3"}).direct_endpoint == "http://d:3"


def test_requests_replace_the_default_duration() -> None:
    assert bench([]).duration_s == 30.0
    cfg = bench(["--requests", "50"])
    assert (cfg.requests, cfg.duration_s) == (50, None)


@pytest.mark.parametrize(
    ("text", "seconds"), [("500ms", 0.5), ("90", 90.0), ("1.5h", 5400.0), ("1e-05", 1e-05)]
)
def test_durations_read_units(text: str, seconds: float) -> None:
    assert bench(["--duration", text]).duration == seconds


@pytest.mark.parametrize(
    ("cls", "argv", "old", "field", "value"),
    [
        (
            BenchSettings,
            ["--nkn-rpc-url", "http://n:1/"],
            "--nkn-rpc-url",
            "nkn_rpc",
            "http://n:1/",
        ),
        (
            NknPeerSettings,
            ["--relay-address", "a.b", "--rpc-url", "http://n:1/"],
            "--rpc-url",
            "nkn_rpc",
            "http://n:1/",
        ),
        (NknBenchSettings, ["--subclients", "2"], "--subclients", "num_subclients", 2),
        (ProxyBenchSettings, ["--tokens", "7"], "--tokens", "max_tokens", 7),
    ],
    ids=["bench", "nkn-peer", "nkn-bench", "proxy-bench"],
)
def test_deprecated_spellings_warn_and_work(
    cls: type[ServiceSettings], argv: list[str], old: str, field: str, value: object
) -> None:
    loaded = load(cls, argv, {})
    assert getattr(loaded.settings, field) == value
    (warning,) = loaded.warnings
    assert old in warning and "--" + field.replace("_", "-") in warning


def test_the_old_stream_lists_keep_working() -> None:
    assert load(NknBenchSettings, ["--streams", "1,9,16"], {}).settings.streams == (1, 9, 16)
    proxy = load(ProxyBenchSettings, ["--streams", "9", "--streams", "64,128"], {}).settings
    assert proxy.streams == (9, 64, 128)
    assert load(ProxyBenchSettings, ["--no-nginx"], {}).settings.nginx is False


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--target", "moon"], "--target 'moon': unknown target moon"),
        (["--sweep", "1,x"], "--sweep '1,x': expected comma-separated integers"),
        (["--sweep", "0,2"], "--sweep '0,2': stream counts are integers >= 1"),
        (["--sweep", "2,2"], "--sweep '2,2': a stream count is given twice"),
        (["--duration", "soon"], "--duration 'soon': not a duration"),
        (["--duration", "5s", "--requests", "3"], "give exactly one of --duration and --requests"),
        (["--rate", "-1"], "--rate '-1': "),
        (["--streams", "0"], "--streams '0': "),
        (["--target", "nkn", "--api", "openai"], "--target nkn relays the native Ollama API"),
        (["--web", "--sweep", "1,2"], "--web runs one target at one stream count"),
    ],
    ids=[
        "target",
        "sweep-text",
        "sweep-zero",
        "sweep-twice",
        "duration",
        "both-limits",
        "rate",
        "streams",
        "nkn-sse",
        "web",
    ],  # fmt: skip
)
def test_bad_values_give_one_line_naming_the_flag(argv: list[str], message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        bench(argv)
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


def test_the_entry_point_prints_one_line_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--streams", "0"], {}) == 2
    assert main(["report"], {}) == 2
    assert main(["demo", "--mode", "moon"], {}) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("python -m bench: error: --streams '0'")
    assert err[1] == "python -m bench report: error: give at least one result folder (DIR…)"
    assert err[2].startswith("python -m bench demo: error: argument --mode: invalid choice")
    assert len(err) == 3 and "Traceback" not in "".join(err)


def test_report_settings_name_the_comparison_folder() -> None:
    one = load(ReportSettings, ["results/A"], {}).settings
    assert one.dirs == (Path("results/A"),)
    both = load(ReportSettings, ["results/A", "results/B"], {}).settings
    assert both.comparison_out() == Path("results/compare-A-vs-B")
    assert load(ReportSettings, ["A", "--out", "x"], {}).settings.comparison_out() == Path("x")


def test_print_config_shows_each_origin_and_hides_the_key(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "BENCH_MODEL": "m1", "FARM_API_KEY": "sekret"}
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--print-config", "--streams", "4"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = {line.split("=")[0].strip(): line for line in done.stdout.splitlines()}
    assert lines["streams"].endswith("= 4  (flag --streams)")
    assert lines["model"].endswith("= m1  (env BENCH_MODEL)")
    assert lines["proxy_url"].endswith("(default)")
    assert "sekret" not in done.stdout and "********" in lines["api_key"]


# -- round trip: the argv (and environment) a parent hands a child load back to equal settings

_TEXT = st.text(string.ascii_letters + string.digits + ":/._", min_size=1, max_size=16)
_PATHS = _TEXT.map(Path)
_POSITIVE = st.floats(min_value=0, exclude_min=True, max_value=1e9, allow_infinity=False)
_COUNTS = st.lists(st.integers(1, 512), min_size=1, max_size=4, unique=True).map(tuple)


def _fields(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Field values, each drawn or left out (then the default holds)."""
    return st.fixed_dictionaries({}, optional=fields)


FIELDS: dict[type[ServiceSettings], st.SearchStrategy[dict[str, Any]]] = {
    BenchSettings: _fields(
        target=st.lists(st.sampled_from(TARGETS), min_size=1, max_size=3, unique=True).map(tuple),
        url=st.none() | _TEXT,
        proxy_url=_TEXT,
        direct_url=st.none() | _TEXT,
        relay_address=st.none() | _TEXT,
        nkn_rpc=st.none() | _TEXT,
        nkn_loopback=st.booleans(),
        model=st.none() | _TEXT,
        api=st.sampled_from(["ollama", "openai"]),
        streams=st.integers(1, 10_000),
        sweep=st.just(()) | _COUNTS,
        duration=st.none() | _POSITIVE,
        requests=st.none() | st.integers(1, 10**6),
        warmup=st.integers(0, 100),
        rate=st.none() | _POSITIVE,
        prompts=_TEXT,
        prompt_count=st.integers(1, 10_000),
        max_tokens=st.integers(1, 10_000),
        seed=st.integers(-(2**31), 2**31),
        slo_ttft_ms=st.none() | _POSITIVE,
        slo_tpot_ms=st.none() | _POSITIVE,
        workers=st.integers(0, 64),
        timeout=_POSITIVE,
        out=st.none() | _PATHS,
        web=st.booleans(),
        quiet=st.booleans(),
        api_key=st.none() | _TEXT,
    ),
    ReportSettings: _fields(
        dirs=st.lists(_PATHS, min_size=1, max_size=3).map(tuple), out=st.none() | _PATHS
    ),
    DemoSettings: _fields(
        mode=st.sampled_from(["sim", "docker", "local"]),
        model=_TEXT,
        streams=st.integers(1, 512),
        duration=_POSITIVE,
        out=st.none() | _PATHS,
    ),
    WorkerSettings: _fields(
        bench_spec=st.none() | _PATHS,
        bench_worker=st.integers(0, 64),
        bench_quota=st.integers(0, 10**6),
        bench_rate_share=st.floats(min_value=0, max_value=1, exclude_min=True),
    ),
    NknPeerSettings: _fields(
        relay_address=st.none() | _TEXT,
        nkn_rpc=st.none() | _TEXT,
        loopback=st.none() | _TEXT,
    ),
    NknBenchSettings: _fields(
        streams=_COUNTS,
        rounds=st.integers(1, 100),
        decode_ms=st.floats(min_value=0, max_value=1e6),
        max_tokens=st.integers(1, 10_000),
        batch_lines=st.integers(1, 1000),
        batch_ms=st.integers(0, 10_000),
        num_subclients=st.integers(1, 8),
        seed=st.integers(-1000, 1000),
        network=st.sampled_from(["nkn", "memory"]),
        out_dir=_PATHS,
    ),
    ProxyBenchSettings: _fields(
        streams=_COUNTS,
        rounds=st.integers(1, 100),
        max_tokens=st.integers(1, 10_000),
        decode_ms=st.floats(min_value=0, max_value=1e6),
        rss_streams=st.integers(1, 4096),
        nginx=st.booleans(),
        install=st.booleans(),
        out=st.none() | _PATHS,
    ),
}


@pytest.mark.parametrize("cls", list(FIELDS), ids=lambda cls: cls.__name__)
@given(data=st.data())
def test_argv_and_child_env_load_back_to_equal_settings(
    cls: type[ServiceSettings], data: st.DataObject
) -> None:
    values = data.draw(FIELDS[cls])
    try:
        settings = validate(cls, values)
    except SettingsError:
        assume(False)
        raise
    assert load(cls, to_argv(settings), child_env(settings)).settings == settings
