"""How the hub runs the platform service, tested against an empty traitlets Config()."""

from __future__ import annotations

from idsp.config import load_config
from idsp.hub import accounts, configurer
from idsp.hub.spawner import OWN_SERVER_SCOPE
from idsp.service import ACCESS_SCOPE
from idsp.service.account import account_name
from idsp.service.link import service_url
from traitlets.config import Config


def _apply(environ=None) -> Config:
    c = Config()
    configurer.apply(load_config(environ=environ or {}), c, instance="abc")
    return c


def test_the_service_is_a_managed_service_under_its_own_account():
    c = _apply({"IDSP_HUB__PROXY_API_PORT": "9101", "IDSP_HUB__USER_PREFIX": "ab-"})
    (svc,) = [s for s in c.JupyterHub.services if s["name"] == "idsp"]
    assert svc["url"] == "http://127.0.0.1:9102"
    assert svc["user"] == "ab-svc-idsp"
    assert svc["command"][1:4] == ["-P", "-m", "idsp.service"]
    assert svc["oauth_no_confirm"] is True
    assert svc["environment"][configurer.INSTANCE_ENV] == "abc"  # ended with the hub
    assert "api_token" not in svc
    # no platform config to follow: the service reads its command line only
    assert not any(
        k.startswith("IDSP_") and k != configurer.INSTANCE_ENV for k in svc["environment"]
    )
    assert c.Spawner.environment["IDSP_SERVICE_URL"] == "http://127.0.0.1:9102/services/idsp/"


def test_users_and_their_server_tokens_may_reach_the_service():
    c = _apply()
    (user,) = [r for r in c.JupyterHub.load_roles if r["name"] == "user"]
    # the own-server scope: a user's server lets in its own user only, not hub admins
    assert set(user["scopes"]) == {"self", ACCESS_SCOPE, f"{OWN_SERVER_SCOPE}!user"}
    assert ACCESS_SCOPE in c.Spawner.server_token_scopes
    assert {"users:activity!user", "access:servers!server"} <= set(c.Spawner.server_token_scopes)


def test_no_hub_user_can_be_the_service_account():
    prefix = "idsp-"
    name = account_name(prefix)
    assert not accounts.USERNAME_RE.match(name.removeprefix(prefix))


def test_below_a_hub_base_url_servers_find_the_service_under_it():
    c = _apply({"IDSP_HUB__PROXY_API_PORT": "9101", "IDSP_HUB__BASE_URL": "/idsp/"})
    url = c.Spawner.environment["IDSP_SERVICE_URL"]
    assert url == "http://127.0.0.1:9102/idsp/services/idsp/"
    # and the library in such a server accepts it (the hub API sits at <base>hub/api)
    env = {"JUPYTERHUB_API_TOKEN": "t", "JUPYTERHUB_API_URL": "http://127.0.0.1:8081/idsp/hub/api", "IDSP_SERVICE_URL": url}
    assert service_url(env) == url
