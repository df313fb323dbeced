"""`SimSettings`: Ollama's variables read as Ollama reads them, flags over them, one-line errors."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from farm.settings import SettingsError, child_env, load, to_argv
from farm.settings.load import validate
from farm.sim.__main__ import main
from farm.sim.child import child_environ
from farm.sim.settings import SimSettings, host_from_env, port_from_env


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0.0.0.0", ("0.0.0.0", 11434)),
        ("127.0.0.1:9000", ("127.0.0.1", 9000)),
        (":8123", ("127.0.0.1", 8123)),
        ("http://example.local", ("example.local", 80)),
        ("https://example.local", ("example.local", 443)),
        ("ftp://example.local", ("example.local", 11434)),
        ("http://[::1]:7000/path", ("::1", 7000)),
        ("::1", ("::1", 11434)),
    ],
    ids=[
        "bare-host",
        "host-port",
        "port-only",
        "http-no-port",
        "https-no-port",
        "other-scheme",
        "ipv6",
        "bare-ipv6",
    ],
)
def test_ollama_host_is_read_like_ollama(value: str, expected: tuple[str, int]) -> None:
    assert (host_from_env(value), port_from_env(value)) == expected
    settings = load(SimSettings, [], {"OLLAMA_HOST": value}).settings
    assert (settings.host, settings.port) == expected


def test_ollama_variables_are_honoured() -> None:
    loaded = load(
        SimSettings,
        [],
        {
            "OLLAMA_HOST": "0.0.0.0:1234",
            "OLLAMA_NUM_PARALLEL": "4",
            "OLLAMA_MAX_QUEUE": "7",
            "OLLAMA_KEEP_ALIVE": "-1",
            "OLLAMA_MAX_LOADED_MODELS": "0",
            "OLLAMA_CONTEXT_LENGTH": "8192",
            "OLLAMA_ORIGINS": "https://a.example, app://x",
        },
    )
    s = loaded.settings
    assert (s.host, s.port, s.num_parallel, s.max_queue) == ("0.0.0.0", 1234, 4, 7)
    assert math.isinf(s.keep_alive) and s.max_loaded_models == 3
    assert s.context_length == 8192
    assert s.origins == ("https://a.example", "app://x")
    assert loaded.origins["num_parallel"] == "env OLLAMA_NUM_PARALLEL"


@pytest.mark.parametrize(
    ("variable", "text", "field", "value"),
    [
        ("OLLAMA_NUM_PARALLEL", "0", "num_parallel", 1),
        ("OLLAMA_KEEP_ALIVE", "90", "keep_alive", 90.0),
        ("OLLAMA_KEEP_ALIVE", "1h30m", "keep_alive", 5400.0),
        ("FARM_SIM_LOAD_MS", "20", "load_ms", 20.0),
        ("FARM_SIM_PREFILL_MS_PER_TOKEN", "0.25", "prefill_ms_per_token", 0.25),
        ("FARM_SIM_DECODE_MS", "3", "decode_ms", 3.0),
        ("FARM_SIM_BATCH_SLOWDOWN", "0.5", "batch_slowdown", 0.5),
        ("FARM_SIM_JITTER", "0.1", "jitter", 0.1),
        ("FARM_SIM_SEED", "9", "seed", 9),
        ("FARM_SIM_PULL_MS", "10", "pull_ms", 10.0),
        ("FARM_SIM_RESPONSE_TOKENS", "4:8", "response_tokens", "4:8"),
        ("FARM_SIM_MODELS", "/tmp/store", "models_dir", Path("/tmp/store")),
    ],
    ids=lambda v: str(v),
)
def test_each_variable_sets_its_field(variable: str, text: str, field: str, value: object) -> None:
    assert getattr(load(SimSettings, [], {variable: text}).settings, field) == value


def test_flags_beat_the_environment() -> None:
    settings = load(
        SimSettings,
        ["--num-parallel", "3", "--keep-alive", "10m", "--empty-store", "--origins", "x://y"],
        {"OLLAMA_NUM_PARALLEL": "8", "OLLAMA_MAX_QUEUE": "9", "OLLAMA_ORIGINS": "a://b"},
    ).settings
    assert (settings.num_parallel, settings.max_queue, settings.keep_alive) == (3, 9, 600.0)
    assert settings.empty_store and settings.origins == ("x://y",)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("300", 300.0), ("2.5", 2.5), ("5m", 300.0), ("-1", math.inf), ("-1m", math.inf)],
    ids=["seconds", "fraction", "duration", "negative", "negative-duration"],
)
def test_keep_alive_flag_takes_seconds_or_durations(text: str, seconds: float) -> None:
    # `=` because argparse reads a lone "-1m" as an option.
    assert load(SimSettings, [f"--keep-alive={text}"], {}).settings.keep_alive == seconds


def test_response_tokens_is_one_count_or_a_range() -> None:
    assert SimSettings().token_range == (24, 96)
    assert SimSettings(response_tokens=7).token_range == (7, 7)
    assert load(SimSettings, ["--response-tokens", "3:3"], {}).settings.response_tokens == "3"
    assert validate(SimSettings, {"response_tokens": (2, 5)}).token_range == (2, 5)


@pytest.mark.parametrize(
    ("argv", "environ", "message"),
    [
        ([], {"OLLAMA_NUM_PARALLEL": "many"}, "OLLAMA_NUM_PARALLEL='many': expected a whole"),
        ([], {"OLLAMA_KEEP_ALIVE": "5x"}, "OLLAMA_KEEP_ALIVE='5x': time: unknown unit"),
        ([], {"OLLAMA_HOST": "h:99999"}, "OLLAMA_HOST='h:99999': port '99999' is not 0-65535"),
        ([], {"FARM_SIM_JITTER": "1.5"}, "FARM_SIM_JITTER '1.5': Input should be less than 1"),
        (["--keep-alive", "soon"], {}, "--keep-alive 'soon': time: invalid duration"),
        (["--response-tokens", "9:3"], {}, "--response-tokens '9:3': needs 1 <= LOW <= HIGH"),
        (["--num-parallel", "0"], {}, "--num-parallel '0': Input should be greater than"),
        (["--log-level", "loud"], {}, "--log-level 'loud': expected one of debug"),
    ],
    ids=["count", "duration", "host-port", "jitter", "flag-duration", "range", "slots", "level"],
)
def test_a_bad_value_is_one_line_naming_the_flag_or_variable(
    argv: list[str], environ: dict[str, str], message: str
) -> None:
    with pytest.raises(SettingsError) as caught:
        load(SimSettings, argv, environ)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_the_entry_point_reports_a_bad_value_in_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--jitter", "2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("python -m farm.sim: error: --jitter '2':")
    assert err.count("\n") == 1


def test_log_level_accepts_any_case() -> None:
    assert load(SimSettings, ["--log-level", "INFO"], {}).settings.log_level == "info"


def test_print_config_shows_values_and_where_they_came_from() -> None:
    env = {"PATH": "/usr/bin:/bin", "OLLAMA_NUM_PARALLEL": "6", "OLLAMA_HOST": "127.0.0.1:9"}
    out = subprocess.run(
        [sys.executable, "-m", "farm.sim", "--print-config", "--decode-ms", "3"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert out.returncode == 0, out.stderr
    lines = {line.split("=")[0].strip(): line for line in out.stdout.splitlines()}
    assert lines["num_parallel"].endswith("= 6  (env OLLAMA_NUM_PARALLEL)")
    assert lines["port"].endswith("= 9  (env OLLAMA_HOST)")
    assert lines["decode_ms"].endswith("= 3.0  (flag --decode-ms)")
    assert lines["keep_alive"].endswith("= 300.0  (default)")
    assert "SYNTHETIC" not in out.stdout  # it printed and exited without serving


def test_child_environment_drops_variables_of_explicit_settings() -> None:
    settings = SimSettings(load_ms=1500.0)
    base = {"FARM_SIM_LOAD_MS": "20", "FARM_SIM_DECODE_MS": "1", "PATH": "/bin"}
    env = child_environ(base, settings, ["load_ms"])
    assert env == {"FARM_SIM_DECODE_MS": "1", "PATH": "/bin"}
    assert load(SimSettings, to_argv(settings), env).settings.load_ms == 1500.0


_counts = st.integers(min_value=1, max_value=10_000)
_ms = st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False)
# An origin starts with its scheme's letter (a leading "-" would read as an option).
_text = st.from_regex(r"[a-z][a-z0-9:/.-]{0,19}", fullmatch=True)


@st.composite
def _token_ranges(draw: st.DrawFn) -> str:
    low = draw(st.integers(min_value=1, max_value=500))
    high = draw(st.integers(min_value=low, max_value=1000))
    return str(low) if low == high else f"{low}:{high}"


_settings = st.builds(
    SimSettings,
    host=st.sampled_from(["127.0.0.1", "0.0.0.0", "::1", "localhost"]),
    port=st.integers(min_value=0, max_value=65535),
    num_parallel=_counts,
    max_queue=st.integers(min_value=0, max_value=10_000),
    keep_alive=st.one_of(_ms, st.just(math.inf)),
    max_loaded_models=_counts,
    context_length=_counts,
    origins=st.lists(_text, max_size=3).map(tuple),
    load_ms=_ms,
    prefill_ms_per_token=_ms,
    decode_ms=_ms,
    batch_slowdown=_ms,
    jitter=st.floats(min_value=0, max_value=0.99),
    seed=st.integers(min_value=-(2**31), max_value=2**31),
    fail_after_tokens=st.none() | st.integers(min_value=0, max_value=1000),
    stall_after_tokens=st.none() | st.integers(min_value=0, max_value=1000),
    pull_ms=_ms,
    response_tokens=_token_ranges(),
    empty_store=st.booleans(),
    models_dir=st.none() | st.sampled_from([Path("/tmp/a store"), Path("rel/dir")]),
    log_level=st.sampled_from(["debug", "info", "warning", "error", "critical"]),
)


@given(_settings)
def test_to_argv_round_trips(settings: SimSettings) -> None:
    assert load(SimSettings, to_argv(settings), child_env(settings)).settings == settings
