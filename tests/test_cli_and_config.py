"""The CLI's contract (exit codes, --version, light --help) and the platform config."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from idsp.config import load_config
from idsp.errors import ConfigError

HEAVY = ("pandas", "great_expectations", "mlflow", "dvc", "sklearn")
REPO = Path(__file__).resolve().parents[1]


def _modules_after(args: list[str]) -> set[str]:
    code = (
        "import sys\nfrom idsp.cli import run\n"
        f"rc = run({args!r})\n"
        "print('MODULES', ','.join(sorted(m.split('.')[0] for m in sys.modules)))\n"
        "sys.exit(rc)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("MODULES ")][-1]
    return set(line.split(" ", 1)[1].split(","))


def _groups() -> list[str]:
    from idsp.cli import GROUPS

    return list(GROUPS)


def test_help_imports_nothing_heavy():
    loaded = _modules_after(["--help"])
    assert "typer" in loaded  # the probe does see imports
    assert not loaded & set(HEAVY), loaded & set(HEAVY)


@pytest.mark.parametrize("group", _groups())
def test_group_help_imports_nothing_heavy(group):
    loaded = _modules_after([group, "--help"])
    assert not loaded & set(HEAVY), (group, loaded & set(HEAVY))


def test_version(cli):
    code, out, _ = cli("--version")
    assert code == 0
    assert out.strip().startswith("idsp 0.")


def test_the_one_version_constant_is_the_distributions():
    import tomllib

    from idsp.defaults import VERSION

    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text(encoding="utf-8"))
    assert project["project"]["version"] == VERSION


def test_unknown_command_is_usage_error(cli):
    code, _, err = cli("no-such-command")
    assert code == 2
    assert "No such command" in err


def test_console_script_runs():
    exe = Path(sys.executable).with_name("idsp")
    proc = subprocess.run([str(exe), "--version"], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.startswith("idsp ")


def test_stdlib_platform_is_not_shadowed():
    proc = subprocess.run(
        [sys.executable, "-c", "import platform; print(platform.system())"],
        cwd=REPO, capture_output=True, text=True,
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "Linux"
    assert not (REPO / "platform" / "__init__.py").exists()


def test_defaults_are_complete(idsp_home):
    cfg = load_config(environ={})
    assert cfg.hub.limits.memory == "2G"
    assert cfg.path("keys_dir") == idsp_home / "keys"
    assert cfg.tracking.client_uri() == "http://127.0.0.1:5000"


def test_env_overrides_file(tmp_path):
    file = tmp_path / "platform.yaml"
    file.write_text("hub:\n  limits:\n    memory: 1G\n  port: 8100\n")
    cfg = load_config(file, environ={"IDSP_HUB__LIMITS__MEMORY": "4G"})
    assert cfg.hub.limits.memory == "4G"
    assert cfg.hub.port == 8100


def test_bad_value_names_path_value_and_allowed(tmp_path):
    file = tmp_path / "platform.yaml"
    file.write_text("hub:\n  limits:\n    memory: lots\n")
    with pytest.raises(ConfigError) as exc:
        load_config(file, environ={})
    msg = exc.value.message
    assert "hub.limits.memory" in msg and "'lots'" in msg and "512M" in msg
    assert str(file) in msg


def test_bad_env_value_names_the_variable():
    with pytest.raises(ConfigError) as exc:
        load_config(environ={"IDSP_HUB__PORT": "99999"})
    assert "IDSP_HUB__PORT" in exc.value.message and "hub.port" in exc.value.message


def test_unknown_key_lists_known_ones(tmp_path):
    file = tmp_path / "platform.yaml"
    file.write_text("hub:\n  limit: {}\n")
    with pytest.raises(ConfigError) as exc:
        load_config(file, environ={})
    assert "hub.limit" in exc.value.message and "limits" in exc.value.message


def test_yaml_syntax_error_gives_line(tmp_path):
    file = tmp_path / "platform.yaml"
    file.write_text("hub:\n  port: [8000\n")
    with pytest.raises(ConfigError) as exc:
        load_config(file, environ={})
    assert "line" in exc.value.message


def test_config_validate_cli(cli, tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text("tracking:\n  port: 5050\n")
    assert cli("config", "validate", "--config", str(good))[0] == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("tracking:\n  port: nope\n")
    code, out, err = cli("config", "validate", "--config", str(bad))
    assert code == 2
    assert "tracking.port" in err and "Traceback" not in err + out


def test_config_show_json(cli, monkeypatch):
    monkeypatch.setenv("IDSP_TRACKING__PORT", "5123")
    code, out, _ = cli("config", "show", "--json")
    assert code == 0
    assert json.loads(out)["tracking"]["port"] == 5123
