"""The hub's side of the start page: its home page links there, and admins see how many
sign-ups wait (counted from NativeAuthenticator's own table in a real hub database)."""

from __future__ import annotations

import types

from idsp.config import load_config
from idsp.hub import configurer, home
from jupyterhub import orm
from nativeauthenticator import NativeAuthenticator
from nativeauthenticator.orm import UserInfo
from traitlets.config import Config


def test_the_configurer_adds_the_home_template_and_its_variables(tmp_path):
    c = Config()
    configurer.apply(load_config(environ={"IDSP_HOME": str(tmp_path)}), c)
    assert c.JupyterHub.template_paths == [str(home.TEMPLATES)]
    assert (home.TEMPLATES / "home.html").read_text().startswith("{#")
    assert c.JupyterHub.template_vars["idsp_start_url"] == "/services/idsp/"
    pending = c.JupyterHub.template_vars["idsp_pending_signups"]
    assert pending(None) is None  # the login page: nobody signed in
    assert pending(types.SimpleNamespace(admin=False, name="daan")) is None  # never for non-admins


def test_a_base_url_moves_the_start_page_with_it():
    assert home.template_vars("/idsp/", "/services/idsp/")["idsp_start_url"] == "/idsp/services/idsp/"


def test_pending_signups_are_the_unapproved_sign_ups(tmp_path):
    db = orm.new_session_factory(f"sqlite:///{tmp_path / 'hub.sqlite'}")()
    auth = NativeAuthenticator(admin_users={"beheer"}, db=db)  # as the hub makes it
    for name, ok in (("beheer", False), ("anouk", True), ("daan", False), ("pim", False)):
        db.add(UserInfo(username=name, password=b"x", is_authorized=ok))
    db.commit()
    assert home.pending_signups(auth) == 2  # daan and pim; the admin counts as approved
    db.query(UserInfo).filter_by(username="daan").update({"is_authorized": True})
    db.commit()
    assert home.pending_signups(auth) == 1


def test_no_count_without_sign_ups():
    assert home.pending_signups(object()) is None
