"""The settings layer: one declaration gives the parser, env and .env loading, provenance,
argv for children and one-line errors."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import model_validator

from farm.settings import (
    ServiceSettings,
    SettingsError,
    child_env,
    describe,
    load,
    parser_for,
    run_main,
    setting,
    to_argv,
)


class Demo(ServiceSettings):
    """A service with one setting of every shape."""

    prog = "python -m demo"
    env_file_setting = "env_file"

    host: str = setting("127.0.0.1", help="address to bind", env="DEMO_HOST")
    port: int = setting(8080, help="port to bind", env=("DEMO_PORT", "PORT"), ge=1, le=65535)
    mode: Literal["fast", "slow"] = setting("fast", help="how to run")
    pull: bool = setting(True, help="pull the model first")
    backend_url: tuple[str, ...] = setting((), help="backends, repeatable", deprecated=("--url",))
    api_key: str | None = setting(None, help="the key", env="DEMO_KEY", secret=True)
    ratio: float = setting(0.5, help="a ratio; 5 % steps", env="DEMO_RATIO", ge=0, le=1)
    state_dir: Path = setting(Path(".state"), help="where state lives", env="DEMO_STATE", cli=False)
    env_file: Path = setting(Path(".env"), help="settings file", env="DEMO_ENV_FILE")

    @model_validator(mode="after")
    def _slow_needs_pull(self) -> Demo:
        if self.mode == "slow" and not self.pull:
            raise ValueError("--mode slow needs the model pulled (drop --no-pull)")
        return self


def test_precedence_is_flag_then_environment_then_dotenv_then_default(tmp_path: Path) -> None:
    env_file = tmp_path / "settings.env"
    env_file.write_text("DEMO_PORT=7000\nDEMO_HOST=10.0.0.1\nDEMO_RATIO=0.25\n")
    loaded = load(
        Demo,
        ["--port", "9000", "--env-file", str(env_file)],
        {"DEMO_PORT": "8000", "DEMO_HOST": "0.0.0.0"},
    )
    s = loaded.settings
    assert (s.port, s.host, s.ratio, s.mode) == (9000, "0.0.0.0", 0.25, "fast")
    assert loaded.origins["port"] == "flag --port"
    assert loaded.origins["host"] == "env DEMO_HOST"
    assert loaded.origins["ratio"].startswith(".env DEMO_RATIO")
    assert loaded.origins["mode"] == "default"


def test_second_variable_name_is_read_when_the_first_is_absent() -> None:
    assert load(Demo, [], {"PORT": "81"}).settings.port == 81


def test_blank_variable_counts_as_unset() -> None:
    assert load(Demo, [], {"DEMO_PORT": "  "}).settings.port == 8080


@pytest.mark.parametrize(
    ("argv", "environ", "message"),
    [
        (["--port", "x"], {}, "--port 'x': Input should be a valid integer"),
        ([], {"PORT": "0"}, "PORT '0': Input should be greater than or equal to 1"),
        (["--mode", "warp"], {}, "argument --mode: invalid choice: 'warp'"),
        (["--bogus"], {}, "unrecognized arguments: --bogus"),
        ([], {"DEMO_KEY": " "}, None),
        (["--mode", "slow", "--no-pull"], {}, "--mode slow needs the model pulled"),
    ],
    ids=["bad-int-flag", "out-of-range-env", "bad-choice", "unknown-flag", "blank-ok", "cross"],
)
def test_bad_values_are_one_line_naming_the_flag_or_variable(
    argv: list[str], environ: dict[str, str], message: str | None
) -> None:
    if message is None:
        assert load(Demo, argv, environ).settings.api_key is None
        return
    with pytest.raises(SettingsError) as info:
        load(Demo, argv, environ)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


def test_bad_dotenv_value_names_the_key_and_the_file(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("DEMO_RATIO=lots\n")
    with pytest.raises(SettingsError, match=rf"DEMO_RATIO in {env_file} 'lots'"):
        load(Demo, ["--env-file", str(env_file)], {})


def test_secret_is_redacted_in_errors_and_print_config() -> None:
    loaded = load(Demo, [], {"DEMO_KEY": "s3cret"})
    text = "\n".join(describe(loaded))
    assert "s3cret" not in text
    assert "api_key" in text and "(env DEMO_KEY)" in text


def test_deprecated_spelling_works_and_warns() -> None:
    loaded = load(Demo, ["--url", "http://a:1", "--backend-url", "http://b:2"], {})
    assert loaded.settings.backend_url == ("http://a:1", "http://b:2")
    assert loaded.warnings == ("--url is deprecated and will be removed: use --backend-url",)


def test_help_lists_every_flag_with_its_help_text() -> None:
    text = parser_for(Demo).format_help()
    for flag in ("--host", "--port", "--mode", "--pull", "--no-pull", "--backend-url"):
        assert flag in text
    assert "--state-dir" not in text  # environment only
    assert "--url" not in text  # deprecated spellings stay out of the help
    assert "5 % steps" in text


def test_to_argv_is_a_list_and_keeps_secrets_out_of_it() -> None:
    s = Demo(port=1, api_key="k", backend_url=("http://a:1",), pull=False)
    argv = to_argv(s)
    assert argv == ["--port", "1", "--no-pull", "--backend-url", "http://a:1"]
    assert child_env(s) == {"DEMO_KEY": "k"}


_hosts = st.sampled_from(["127.0.0.1", "0.0.0.0", "::1", "farm.lan"])
_urls = st.lists(st.sampled_from(["http://a:1", "https://b", "http://c:3"]), max_size=3)


@given(
    host=_hosts,
    port=st.integers(1, 65535),
    mode=st.sampled_from(["fast", "slow"]),
    pull=st.booleans(),
    urls=_urls,
    key=st.one_of(st.none(), st.text("abcdef0123", min_size=1, max_size=8)),
    ratio=st.floats(0, 1, allow_nan=False),
    state=st.sampled_from([".state", "/var/lib/farm", "a b/c"]),
)
def test_loading_to_argv_and_child_env_gives_the_same_settings(
    host: str,
    port: int,
    mode: str,
    pull: bool,
    urls: list[str],
    key: str | None,
    ratio: float,
    state: str,
) -> None:
    if mode == "slow":
        pull = True
    s = Demo(
        host=host,
        port=port,
        mode=mode,  # type: ignore[arg-type]
        pull=pull,
        backend_url=tuple(urls),
        api_key=key,
        ratio=ratio,
        state_dir=Path(state),
    )
    assert load(Demo, to_argv(s), child_env(s)).settings == s


def test_run_main_prints_config_and_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    code = run_main(Demo, lambda loaded: 99, ["--print-config", "--port", "5"], {})
    out = capsys.readouterr().out
    assert code == 0
    assert "port        = 5  (flag --port)" in out


def test_run_main_turns_a_bad_value_into_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = run_main(Demo, lambda loaded: 0, ["--port", "-3"], {})
    err = capsys.readouterr().err
    assert code == 2
    assert err == "python -m demo: error: --port '-3': Input should be greater than or equal to 1\n"


def test_constructing_with_keywords_reads_no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEMO_PORT", "1234")
    assert Demo().port == 8080


def test_a_value_that_starts_with_a_dash_round_trips() -> None:
    s = Demo(host="-weird", backend_url=("-x",))
    assert to_argv(s) == ["--host=-weird", "--backend-url=-x"]
    assert load(Demo, to_argv(s), {}).settings == s


def test_a_missing_required_setting_is_named_with_its_help() -> None:
    class Needy(ServiceSettings):
        model: str = setting(help="the model to serve")

    with pytest.raises(SettingsError, match=r"^--model: required \(the model to serve\)$"):
        load(Needy, [], {})
