"""`ProxySettings`: variables honoured, flags over them, one-line errors, argv round trip."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from farm.proxy.__main__ import main
from farm.proxy.child import ProxyServer
from farm.proxy.settings import ProxySettings
from farm.settings import SettingsError, child_env, load, to_argv

ONE = ["--backend", "http://127.0.0.1:11434"]


def test_variables_are_honoured() -> None:
    loaded = load(
        ProxySettings,
        [],
        {
            "FARM_PROXY_BACKENDS": "http://a:1, https://b:2/",
            "FARM_PROXY_HOST": "0.0.0.0",
            "FARM_PROXY_PORT": "9000",
            "FARM_API_KEY": "s3cret",
        },
    )
    s = loaded.settings
    assert s.backend == ("http://a:1", "https://b:2")
    assert (s.host, s.port, s.api_key) == ("0.0.0.0", 9000, "s3cret")
    assert loaded.origins["backend"] == "env FARM_PROXY_BACKENDS"


def test_flags_beat_the_environment() -> None:
    env = {"FARM_PROXY_BACKENDS": "http://a:1", "FARM_PROXY_PORT": "9", "FARM_API_KEY": "env"}
    s = load(ProxySettings, ["--backend", "http://b:2", "--port", "10", "--api-key", "k"], env)
    assert (s.settings.backend, s.settings.port, s.settings.api_key) == (("http://b:2",), 10, "k")


def test_existing_flag_spellings_keep_working() -> None:
    argv = [
        *["--backend", "http://a:1", "--backend", "http://b:2"],
        *["--host", "::1", "--port", "0", "--model", "gemma3:4b", "--num-parallel", "4"],
        *["--pin-num-ctx", "8192", "--pin-num-gpu", "0", "--api-key", "k"],
        *["--cors-origins", "https://x.example", "--cors-origins", "*"],
        *["--header-timeout", "1.5", "--idle-timeout", "2", "--connect-timeout", "3"],
        *["--max-body-bytes", "1024", "--health-interval", "0.5", "--no-access-log"],
        *["--log-level", "debug"],
    ]
    s = load(ProxySettings, argv, {}).settings
    assert s.backend == ("http://a:1", "http://b:2")
    assert s.cors_origins == ("https://x.example", "*")
    assert (s.header_timeout, s.idle_timeout, s.connect_timeout) == (1.5, 2.0, 3.0)
    assert (s.max_body_bytes, s.health_interval, s.access_log) == (1024, 0.5, False)
    assert (s.pin_num_ctx, s.pin_num_gpu, s.num_parallel, s.log_level) == (8192, 0, 4, "debug")


def test_an_empty_key_variable_means_no_key() -> None:
    assert load(ProxySettings, ONE, {"FARM_API_KEY": ""}).settings.api_key is None


@pytest.mark.parametrize(
    ("argv", "environ", "message"),
    [
        ([], {}, "at least one --backend (FARM_PROXY_BACKENDS) or --backend-dns is required"),
        (["--backend", "ftp://x"], {}, "--backend 'ftp://x': backend URL must look like"),
        ([], {"FARM_PROXY_BACKENDS": "http://a:1/api"}, "FARM_PROXY_BACKENDS 'http://a:1/api':"),
        ([*ONE, "--port", "x"], {}, "--port 'x': Input should be a valid integer"),
        (ONE, {"FARM_PROXY_PORT": "70000"}, "FARM_PROXY_PORT '70000': Input should be less"),
        ([*ONE, "--idle-timeout", "0"], {}, "--idle-timeout '0': Input should be greater than 0"),
        ([*ONE, "--pin-num-gpu", "-1"], {}, "--pin-num-gpu '-1': Input should be greater"),
        ([*ONE, "--log-level", "loud"], {}, "argument --log-level: invalid choice: 'loud'"),
    ],
    ids=["none", "scheme", "path", "port", "env-port", "timeout", "pin", "level"],
)
def test_a_bad_value_is_one_line_naming_the_flag_or_variable(
    argv: list[str], environ: dict[str, str], message: str
) -> None:
    with pytest.raises(SettingsError) as caught:
        load(ProxySettings, argv, environ)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_a_bad_key_is_named_but_not_shown() -> None:
    with pytest.raises(SettingsError) as caught:
        load(ProxySettings, [*ONE, "--api-key", " "], {})
    assert str(caught.value) == "--api-key ********: must not be blank"


def test_the_entry_point_reports_a_bad_value_in_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--backend", "nonsense"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("python -m farm.proxy: error: --backend 'nonsense':")
    assert err.count("\n") == 1


def test_print_config_shows_values_redacts_the_key_and_exits() -> None:
    env = {"PATH": "/usr/bin:/bin", "FARM_PROXY_BACKENDS": "http://a:1", "FARM_API_KEY": "s3"}
    out = subprocess.run(
        [sys.executable, "-m", "farm.proxy", "--print-config", "--port", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert out.returncode == 0, out.stderr
    lines = {line.split("=")[0].strip(): line for line in out.stdout.splitlines()}
    assert lines["backend"].endswith("= http://a:1  (env FARM_PROXY_BACKENDS)")
    assert lines["port"].endswith("= 1  (flag --port)")
    assert lines["api_key"].endswith("= ********  (env FARM_API_KEY)")
    assert "s3" not in out.stdout


def test_the_test_server_passes_the_key_by_environment_only() -> None:
    server = ProxyServer(["http://127.0.0.1:9"], api_key="k", header_timeout=3)
    assert "k" not in server.argv and "--api-key" not in server.argv
    assert server.argv[3:] == [
        "--backend",
        "http://127.0.0.1:9",
        "--port",
        str(server.port),
        "--header-timeout",
        "3.0",
    ]
    assert server._env["FARM_API_KEY"] == "k"


_hosts = st.sampled_from(["a", "127.0.0.1", "backend.example", "[::1]"])
_urls = st.builds(
    lambda scheme, host, port: f"{scheme}://{host}" + (f":{port}" if port else ""),
    st.sampled_from(["http", "https"]),
    _hosts,
    st.none() | st.integers(min_value=1, max_value=65535),
)
_seconds = st.floats(min_value=1e-3, max_value=1e5, allow_nan=False)
_ports = st.integers(min_value=1, max_value=65535)
_settings = st.builds(
    ProxySettings,
    backend=st.lists(_urls, min_size=1, max_size=3, unique=True).map(tuple),
    host=st.sampled_from(["127.0.0.1", "0.0.0.0", "::1"]),
    port=st.integers(min_value=0, max_value=65535),
    model=st.none() | st.sampled_from(["gemma3:4b", "llama3.2"]),
    num_parallel=st.none() | st.integers(min_value=1, max_value=64),
    pin_num_ctx=st.none() | st.integers(min_value=1, max_value=131072),
    pin_num_gpu=st.none() | st.integers(min_value=0, max_value=999),
    api_key=st.none() | st.text(alphabet="abcXYZ0123-_", min_size=1, max_size=12),
    cors_origins=st.lists(st.sampled_from(["*", "https://x.example", "app://y"]), max_size=3).map(
        tuple
    ),
    header_timeout=_seconds,
    idle_timeout=_seconds,
    connect_timeout=_seconds,
    max_body_bytes=st.none() | st.integers(min_value=1, max_value=2**40),
    health_interval=_seconds,
    access_log=st.booleans(),
    log_level=st.sampled_from(["debug", "info", "warning", "error"]),
    backend_dns=st.lists(
        st.builds("{}:{}".format, st.sampled_from(["ollama", "tasks.web", "a-b.svc"]), _ports),
        max_size=2,
        unique_by=lambda v: v.rsplit(":", 1)[0],
    ).map(tuple),
    dns_interval=_seconds,
    dns_hosts_file=st.none() | st.sampled_from([Path("/etc/farm-hosts"), Path("rel/hosts")]),
)
_labels = st.text(alphabet="abz09 -_:@.=/", min_size=1, max_size=30).map(str.strip).filter(bool)


@st.composite
def _labelled_settings(draw: st.DrawFn) -> ProxySettings:
    base = draw(_settings)
    urls = draw(st.lists(st.sampled_from(base.backend), unique=True))
    labels = tuple(f"{url}={draw(_labels)}" for url in urls)
    return ProxySettings(**{**base.model_dump(), "backend_label": labels})


# No deadline: on a shared 2-core box the first example pays for warming caches.
@hypothesis_settings(deadline=None)
@given(_labelled_settings())
def test_to_argv_round_trips(settings: ProxySettings) -> None:
    assert load(ProxySettings, to_argv(settings), child_env(settings)).settings == settings
