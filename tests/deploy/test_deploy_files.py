"""The deployment folder (deploy/): found in a checkout and in a wheel, its values overlay
read and guarded, the single-user image definition in step with the rendered values, and
the systemd unit starting the real hub."""

from __future__ import annotations

import configparser
import re
import shutil
import tomllib
from pathlib import Path

import pytest
import yaml
from idsp import __version__
from idsp.config import PlatformConfig, load_config
from idsp.deploy import folder
from idsp.deploy import kubernetes as k8s

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def test_the_checkout_deploy_folder_is_found():
    assert folder.deploy_root() == DEPLOY


def test_the_wheel_carries_deploy_where_the_renderer_looks():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    included = project["tool"]["hatch"]["build"]["targets"]["wheel"]["force-include"]
    package = ROOT / "platform" / "idsp"
    assert folder.CANDIDATES[0] == package / Path(included["deploy"]).relative_to("idsp")


def test_a_folder_without_the_overlay_is_refused_with_the_fix(tmp_path, cli):
    code, _, err = cli("deploy", "render", "kubernetes", "--out", str(tmp_path / "out"), "--deploy-dir", str(tmp_path))
    assert code == 2
    assert "not a deployment folder" in err and str(tmp_path) in err
    assert "Traceback" not in err


def _copy_of_deploy(tmp_path) -> Path:
    copy = tmp_path / "my-deploy"
    shutil.copytree(DEPLOY, copy)
    return copy


def test_an_edited_overlay_reaches_the_rendered_values(tmp_path, cli):
    mine = _copy_of_deploy(tmp_path)
    overlay = yaml.safe_load((mine / "kubernetes" / "values.yaml").read_text())
    overlay["singleuser"]["startTimeout"] = 600
    overlay["prePuller"] = {"hook": {"enabled": False}}
    (mine / "kubernetes" / "values.yaml").write_text(yaml.safe_dump(overlay))
    out = tmp_path / "out"
    code, _, err = cli("deploy", "render", "kubernetes", "--out", str(out), "--deploy-dir", str(mine))
    assert code == 0, err
    values = yaml.safe_load((out / "values.yaml").read_text())
    assert values["singleuser"]["startTimeout"] == 600
    assert values["prePuller"] == {"hook": {"enabled": False}}
    assert values["singleuser"]["defaultUrl"] == "/lab"  # the rest of the overlay stays


def test_an_overlay_setting_what_platform_yaml_decides_is_refused(tmp_path, cli):
    mine = _copy_of_deploy(tmp_path)
    path = mine / "kubernetes" / "values.yaml"
    overlay = yaml.safe_load(path.read_text())
    overlay["singleuser"]["memory"] = {"limit": "64G"}
    overlay["custom"] = {"idsp": {"cases": []}}
    path.write_text(yaml.safe_dump(overlay))
    code, _, err = cli("deploy", "render", "kubernetes", "--out", str(tmp_path / "out"), "--deploy-dir", str(mine))
    assert code == 2
    assert "custom.idsp.cases" in err and "singleuser.memory.limit" in err
    assert str(path) in err and "platform.yaml" in err
    assert "Traceback" not in err


def test_the_shipped_overlay_overlaps_nothing_platform_yaml_decides():
    overlay = k8s.load_overlay(DEPLOY)
    decided = k8s.platform_values(PlatformConfig(), DEPLOY)
    assert not set(k8s.value_paths(overlay)) & set(k8s.value_paths(decided))
    assert k8s.render_values(load_config(environ={}))["proxy"]["service"]["type"] == "ClusterIP"


# --- the single-user image ----------------------------------------------------------------

CONTAINERFILE = (DEPLOY / "image" / "Containerfile").read_text()


def _args() -> dict[str, str]:
    return dict(re.findall(r"^ARG (\w+)=(\S+)$", CONTAINERFILE, flags=re.M))


def test_the_image_builds_from_pinned_bases():
    args = _args()
    for line in re.findall(r"^FROM (\S+)", CONTAINERFILE, flags=re.M):
        image = args.get(line.strip("${}"), line)
        name, tag = k8s.image_ref(image, "")
        assert tag and tag != "latest" or "@sha256:" in image, f"unpinned base image {image}"


def test_the_image_installs_the_locked_dependencies_and_the_wheel():
    assert "uv pip sync --python /opt/idsp/bin/python /tmp/idsp/requirements.lock" in CONTAINERFILE
    assert "COPY requirements.lock " in CONTAINERFILE
    assert "--no-deps" in CONTAINERFILE  # the wheel adds no unlocked dependency
    assert "dist/idsp-${IDSP_VERSION}-py3-none-any.whl" in CONTAINERFILE


def test_the_image_default_version_is_the_tag_the_values_refer_to():
    values = k8s.render_values(load_config(environ={}))
    assert _args()["IDSP_VERSION"] == __version__ == values["singleuser"]["image"]["tag"]
    assert f"-t {values['singleuser']['image']['name']}:{__version__}" in CONTAINERFILE


def test_the_image_python_is_the_one_the_lock_was_made_for():
    lock_header = (ROOT / "requirements.lock").read_text().splitlines()[1]
    version = re.search(r"--python-version (\d+\.\d+)", lock_header).group(1)
    assert f"uv venv --python {version} " in CONTAINERFILE


# --- the single-server systemd unit --------------------------------------------------------


@pytest.fixture(scope="module")
def unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None, comment_prefixes=("#", ";"))
    parser.optionxform = str  # systemd keys are case-sensitive
    parser.read_string((DEPLOY / "single-server" / "idsp-hub.service").read_text())
    return parser


def test_the_unit_runs_the_real_hub_as_root(unit):
    start = unit["Service"]["ExecStart"].split()
    assert start[0].endswith("/bin/idsp") and start[1:3] == ["hub", "up"]
    assert start[start.index("--config") + 1].endswith("platform.yaml")
    assert "--dev" not in start, "dev mode lets any user name and password in"
    assert unit["Service"]["User"] == "root"  # the hub refuses to start otherwise
    assert unit["Install"]["WantedBy"] == "multi-user.target"


def test_the_unit_path_holds_the_idsp_it_starts(unit):
    path = unit["Service"]["Environment"].removeprefix("PATH=").split(":")
    assert str(Path(unit["Service"]["ExecStart"].split()[0]).parent) in path


def test_the_hub_accepts_the_unit_arguments(cli):
    code, out, _ = cli("hub", "up", "--help")
    assert code == 0 and "--config" in out and "--dev" in out
