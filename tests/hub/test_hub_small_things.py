"""The small things of issue 11 on a real hub: "hub is up" only once MLflow and the platform
service answer, a sign-up page that names the rule that failed, no Jupyter news prompt, and
`idsp hub down --servers` saying what it did and leaving no cgroups behind."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from idsp.config import PlatformConfig

from tests.hub.conftest import IDSP, approved_user

pytestmark = pytest.mark.slow

MIN_LENGTH = PlatformConfig().hub.passwords.min_length


def test_hub_is_up_only_once_mlflow_and_the_service_answer(hub):
    out = hub.output.read_text()
    assert out.index("waiting for MLflow tracking and the platform service to answer") < out.index("IDSP hub is up")
    assert hub.answering_at_up["mlflow"] == 200, hub.answering_at_up
    assert hub.answering_at_up["service"] is not None and hub.answering_at_up["service"] < 500
    assert "MLflow tracking (authenticated) is up" in out and "warning: still starting" not in out


def _signup(hub, name: str, password: str, confirmation: str | None = None) -> str:
    user = hub.user(name, password)
    xsrf = user._form_xsrf("/hub/signup")
    r = user.http.post("/hub/signup", data={
        "_xsrf": xsrf, "username": name, "signup_password": password,
        "signup_password_confirmation": password if confirmation is None else confirmation,
    })
    assert r.status_code == 200
    assert "Something went wrong" not in r.text
    return " ".join(r.text.split())


def test_the_signup_page_names_the_rule_that_failed(hub):
    short = "Kort-1"
    text = _signup(hub, "henk", short)
    assert f"Het wachtwoord is te kort: minimaal {MIN_LENGTH} tekens (dit heeft er {len(short)})" in text
    assert f"The password is too short: at least {MIN_LENGTH} characters" in text

    text = _signup(hub, "ilse", "123qweasdzxc")  # long enough, on the common list
    assert "staat op de lijst van veelgebruikte wachtwoorden" in text and "list of common passwords" in text

    text = _signup(hub, "jan-de-vries", "een-lang-en-zeldzaam-wachtwoord")  # the hyphen is reserved
    assert "is niet toegestaan" in text and "The user name" in text and "jan-de-vries" in text

    text = _signup(hub, "kees", "een-lang-en-zeldzaam-wachtwoord", confirmation="iets anders")
    assert "niet gelijk" in text and "confirmation differ" in text
    for name in ("henk", "ilse", "kees"):
        assert hub.user(name, "een-lang-en-zeldzaam-wachtwoord").login().status_code == 200  # no account


@pytest.fixture(scope="module")
def nina(hub, admin):
    user = approved_user(hub, admin, "nina")
    hub.wait_tracking()
    user.spawn()
    return user


def test_no_jupyter_news_prompt_in_a_spawned_server(hub, nina):
    r = nina.http.get("/user/nina/lab/api/settings/@jupyterlab/apputils-extension:notification")
    assert r.status_code == 200, r.text[:500]
    fetch_news = r.json()["schema"]["properties"]["fetchNews"]
    assert fetch_news["default"] == "false"  # "none" (undecided) is what shows the prompt
    nina_home = Path(hub.env["IDSP_HUB__HOMES_ROOT"]) / (hub.prefix + "nina")
    assert not list(nina_home.glob(".jupyter/lab/user-settings/**/*.jupyterlab-settings"))  # nothing in her home


def test_hub_down_servers_says_what_it_did_and_leaves_no_cgroups(hub, nina):
    cgroups = [d for d in (Path("/sys/fs/cgroup/memory/idsp"), Path("/sys/fs/cgroup/idsp"))
               if (d / (hub.prefix + "nina")).is_dir()]
    assert cgroups, "the server's memory limit has a cgroup"
    proc = subprocess.run([IDSP, "hub", "down", "--servers"], env=hub.env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.strip()
    assert out.startswith("hub stopped (pid "), out
    assert "1 user server(s) stopped" in out and "No running hub found" not in out
    assert not any((d / (hub.prefix + "nina")).exists() for d in cgroups)
    # and once more: nothing left to stop, and it says so
    again = subprocess.run([IDSP, "hub", "down", "--servers"], env=hub.env, capture_output=True, text=True,
                           timeout=120)
    assert again.stdout.strip() == "hub not running; 0 user server(s) stopped (0 process(es) ended)"
