"""The launcher's settings: the seed's flags kept, environment honoured, flags winning, one-line
errors, `--print-config`, and argv + environment reproducing the settings a parent chose."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from farm.launch.__main__ import main, split_verb
from farm.launch.children import service_env
from farm.launch.proxy_process import proxy_argv, proxy_settings
from farm.launch.settings import DownSettings, LogsSettings, StatusSettings, UpSettings
from farm.settings import SettingsError, child_env, load, to_argv
from farm.settings.load import validate

SEED_ARGV = [
    "--model", "gemma3:4b", "--num-parallel", "9", "--gpu-layers", "-1", "--front-port", "8080",
    "--back-port", "11435", "--host", "0.0.0.0", "--mode", "docker", "--models-dir", "/srv/m",
    "--keepalive", "1h", "--ctx", "4096", "--no-pull",
]  # fmt: skip


def test_every_flag_of_the_seed_launcher_is_accepted() -> None:
    s = load(UpSettings, SEED_ARGV, {}).settings
    assert (s.model, s.num_parallel, s.gpu_layers) == ("gemma3:4b", 9, -1)
    assert (s.front_port, s.back_port, s.host, s.mode) == (8080, 11435, "0.0.0.0", "docker")
    assert (s.models_dir, s.keepalive, s.ctx, s.pull) == (Path("/srv/m"), "1h", 4096, False)


def test_the_farms_own_flags_are_accepted() -> None:
    s = load(
        UpSettings,
        ["--model", "gemma3:4b", "--back-host", "0.0.0.0", "--backend-url", "http://a:1",
         "--backend-url", "http://b:2", "--image", "ollama/ollama:0.6", "--name", "f1",
         "--detach", "--max-queue", "3", "--flash-attention", "--cpu", "--api-key", "k"],
        {},
    ).settings  # fmt: skip
    assert s.back_host == "0.0.0.0" and s.backend_url == ("http://a:1", "http://b:2")
    assert (s.image, s.name, s.detach, s.max_queue) == ("ollama/ollama:0.6", "f1", True, 3)
    assert s.flash_attention and s.cpu and s.pin_num_gpu == 0 and s.api_key == "k"
    assert load(UpSettings, ["--model", "m", "--replicas", "3"], {}).settings.back_ports == (
        11434,
        11435,
        11436,
    )


def test_the_environment_is_honoured() -> None:
    loaded = load(
        UpSettings,
        ["--model", "gemma3:4b"],
        {
            "FARM_STATE_DIR": "/s",
            "FARM_API_KEY": "k",
            "FARM_READY_TIMEOUT": "30",
            "DOCKER_HOST": "tcp://10.0.0.2:2375",
            "OLLAMA_MODELS": "/m",
        },
    )
    s = loaded.settings
    assert (s.state_dir, s.api_key, s.ready_timeout_s) == (Path("/s"), "k", 30.0)
    assert (s.docker_host, s.ollama_models) == (("tcp://10.0.0.2:2375",), "/m")
    assert loaded.origins["ready_timeout_s"] == "env FARM_READY_TIMEOUT"
    assert load(StatusSettings, [], {"FARM_STATE_DIR": "/s"}).settings.state_dir == Path("/s")


def test_a_flag_beats_its_variable() -> None:
    loaded = load(UpSettings, ["--model", "m", "--api-key", "flag"], {"FARM_API_KEY": "env"})
    assert loaded.settings.api_key == "flag" and loaded.origins["api_key"] == "flag --api-key"


def test_environment_only_settings_have_no_flag() -> None:
    with pytest.raises(SettingsError, match="unrecognized arguments: --state-dir"):
        load(UpSettings, ["--model", "m", "--state-dir", "/x"], {})


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"FARM_READY_TIMEOUT": "soon"}, "FARM_READY_TIMEOUT 'soon': "),
        ({"FARM_READY_TIMEOUT": "-1"}, "FARM_READY_TIMEOUT '-1': must be a positive number"),
    ],
    ids=["not-a-number", "negative"],
)
def test_a_bad_variable_is_one_line_naming_it(environ: dict[str, str], expected: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load(UpSettings, ["--model", "m"], environ)
    assert "\n" not in str(caught.value) and expected in str(caught.value)


def test_a_blank_key_variable_means_no_key() -> None:
    assert load(UpSettings, ["--model", "m"], {"FARM_API_KEY": " "}).settings.api_key is None


def test_a_blank_key_flag_is_refused() -> None:
    with pytest.raises(SettingsError, match="--api-key .*: must not be blank"):
        load(UpSettings, ["--model", "m", "--api-key", " "], {})


def test_the_verbs_have_their_own_settings() -> None:
    logs = load(LogsSettings, ["--no-follow", "--tail", "5", "--replica", "2"], {}).settings
    assert (logs.follow, logs.tail, logs.replica) == (False, 5, 2)
    with pytest.raises(SettingsError, match="unrecognized arguments: extra"):
        load(DownSettings, ["extra"], {})
    assert split_verb(["--model", "m"]) == ("up", ["--model", "m"])
    assert split_verb(["logs", "--tail", "1"]) == ("logs", ["--tail", "1"])


@pytest.mark.parametrize("verb", ["down", "status", "logs"])
def test_every_verb_prints_its_config(
    verb: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([verb, "--print-config"], environ={"FARM_STATE_DIR": str(tmp_path)}) == 0
    assert "(env FARM_STATE_DIR)" in capsys.readouterr().out


def test_no_verb_means_up_and_print_config_starts_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(["--model", "gemma3:4b", "--print-config"], environ={"FARM_STATE_DIR": str(tmp_path)})
    out = capsys.readouterr().out
    assert rc == 0 and f"state_dir       = {tmp_path}  (env FARM_STATE_DIR)" in out
    assert list(tmp_path.iterdir()) == []


def _clean_environ(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FARM_", "OLLAMA_", "DOCKER_"))}
    return {**env, **extra}


@pytest.mark.parametrize(
    ("argv", "environ", "origin"),
    [
        (["--api-key", "s3cr3t-value"], {}, "(flag --api-key)"),
        ([], {"FARM_API_KEY": "s3cr3t-value"}, "(env FARM_API_KEY)"),
    ],
    ids=["flag", "env"],
)
def test_print_config_shows_origins_and_redacts_the_key(
    argv: list[str], environ: dict[str, str], origin: str, tmp_path: Path
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "farm", "up", "--print-config", "--model", "gemma3:4b", *argv],
        env=_clean_environ(FARM_READY_TIMEOUT="30", **environ),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "model           = gemma3:4b  (flag --model)" in lines
    assert "num_parallel    = 4  (default)" in lines
    assert "ready_timeout_s = 30.0  (env FARM_READY_TIMEOUT)" in lines
    assert f"api_key         = ********  {origin}" in lines
    assert "s3cr3t-value" not in done.stdout + done.stderr
    assert not (tmp_path / ".farm").exists()


def test_the_proxy_gets_the_key_by_environment_and_no_inherited_override() -> None:
    config = UpSettings(model="gemma3:4b", api_key="k3y", host="127.0.0.1")
    settings = proxy_settings(config, ["http://127.0.0.1:11434"])
    argv = proxy_argv(settings)
    inherited = {"PATH": "/bin", "FARM_API_KEY": "old", "FARM_PROXY_PORT": "1", "OTHER": "x"}
    env = service_env(inherited, settings)
    assert "k3y" not in argv and env["FARM_API_KEY"] == "k3y"
    # The proxy's port is the farm's choice even where argv leaves the default out.
    assert "FARM_PROXY_PORT" not in env and (env["PATH"], env["OTHER"]) == ("/bin", "x")
    keyless = proxy_settings(UpSettings(model="gemma3:4b"), ["http://127.0.0.1:11434"])
    assert "FARM_API_KEY" not in service_env(inherited, keyless)


MODELS = ["gemma3:4b", "llama3.2", "user/model:v1", "hf.co/org/repo:Q4_K_M", "reg.io:5000/ns/m:t"]
MODES = ["auto", "docker", "local", "sim"]
URLS = ["http://127.0.0.1:11434", "https://gpu-box.lan:8443", "http://[::1]:9000", "http://h"]


@st.composite
def up_settings(draw: st.DrawFn) -> UpSettings:
    """Valid `UpSettings` over every field."""
    backend_url = draw(st.lists(st.sampled_from(URLS), max_size=3, unique=True))
    replicas = 1 if backend_url else draw(st.integers(1, 4))
    cpu = draw(st.booleans())
    values: dict[str, Any] = {
        "model": draw(st.sampled_from(MODELS)),
        "num_parallel": draw(st.integers(1, 64)),
        "gpu_layers": draw(st.integers(-1, 200)),
        "back_port": draw(st.integers(1, 65535 - replicas + 1)),
        "host": draw(st.sampled_from(["0.0.0.0", "127.0.0.1", "::", "gpu-box.lan"])),
        "back_host": draw(st.sampled_from(["127.0.0.1", "0.0.0.0", "::1"])),
        "mode": "auto" if backend_url else draw(st.sampled_from(MODES)),
        "models_dir": draw(st.none() | st.sampled_from([Path("/srv/models"), Path("rel/m")])),
        # Not "-1m": argparse reads a lone value starting with "-" and a letter as an option.
        "keepalive": draw(st.sampled_from(["1h", "5m", "90s", "1h30m", "-1", "3600", "0"])),
        "ctx": draw(st.integers(1, 1 << 20)),
        "pull": draw(st.booleans()),
        "backend_url": tuple(backend_url),
        "replicas": replicas,
        "image": draw(st.sampled_from(["ollama/ollama:latest", "reg.io:5000/ollama:0.6"])),
        "name": draw(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,15}", fullmatch=True)),
        "detach": draw(st.booleans()),
        "max_queue": draw(st.none() | st.integers(1, 10_000)),
        "flash_attention": draw(st.booleans()),
        "cpu": cpu,
        "api_key": draw(st.none() | st.from_regex(r"[A-Za-z0-9_.~+/=-]{1,40}", fullmatch=True)),
        "ready_timeout_s": draw(st.floats(0.001, 1e6)),
        "state_dir": draw(st.sampled_from([Path(".farm"), Path("/var/lib/farm"), Path("a b")])),
        "docker_host": draw(
            st.lists(
                st.sampled_from(["tcp://10.0.0.2:2375", "unix:///d.sock", "ssh://u@h"]), unique=True
            )
        ),
        "gpus": "all"
        if replicas != 1 or cpu or backend_url
        else draw(st.sampled_from(["all", "per-gpu", "0,1"])),
        "ollama_models": draw(st.none() | st.sampled_from(["/srv/store", "store"])),
    }
    ports = range(values["back_port"], values["back_port"] + replicas)
    values["front_port"] = draw(
        st.integers(1, 65535).filter(lambda p: backend_url or p not in ports)
    )
    return validate(UpSettings, values)


@given(up_settings())
def test_argv_and_environment_reproduce_the_settings(settings: UpSettings) -> None:
    argv, env = to_argv(settings), child_env(settings)
    assert load(UpSettings, argv, env).settings == settings
    if settings.api_key is not None:
        assert "--api-key" not in argv and env["FARM_API_KEY"] == settings.api_key
