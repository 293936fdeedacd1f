"""A person at a browser, in code: login form with XSRF, sign-up, approval, spawn, kernel.

Used by the hub tests and the hub benchmark. Talks to a real hub over HTTP and websockets.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from urllib.parse import quote

import httpx
import websocket

_XSRF_FIELD = re.compile(r'name="_xsrf"\s+value="([^"]+)"')


class HubUser:
    def __init__(self, base_url: str, name: str, password: str):
        self.base = base_url.rstrip("/")
        self.name = name
        self.password = password
        self.http = httpx.Client(base_url=self.base, follow_redirects=False, timeout=30)

    def close(self) -> None:
        self.http.close()

    # --- forms -----------------------------------------------------------------------------
    def _form_xsrf(self, path: str) -> str:
        r = self.http.get(path)
        r.raise_for_status()
        m = _XSRF_FIELD.search(r.text)
        assert m, f"no _xsrf field in the form at {path}"
        return m.group(1)

    def signup(self) -> httpx.Response:
        xsrf = self._form_xsrf("/hub/signup")
        return self.http.post(
            "/hub/signup",
            data={
                "_xsrf": xsrf,
                "username": self.name,
                "signup_password": self.password,
                "signup_password_confirmation": self.password,
            },
        )

    def login(self, password: str | None = None) -> httpx.Response:
        """POST the real login form as a fresh browser; returns the response (302 on success)."""
        self.http.cookies.clear()
        xsrf = self._form_xsrf("/hub/login")
        return self.http.post(
            "/hub/login",
            data={"_xsrf": xsrf, "username": self.name, "password": password or self.password},
        )

    def logged_in(self) -> bool:
        r = self.http.get("/hub/api/user", headers=self._xsrf_header())
        return r.status_code == 200 and r.json().get("name") == self.name

    def _xsrf_header(self) -> dict:
        token = self.http.cookies.get("_xsrf", path="/hub/")
        if token is None:
            for cookie in self.http.cookies.jar:
                if cookie.name == "_xsrf":
                    token = cookie.value
        return {"X-XSRFToken": token} if token else {}

    # --- admin -----------------------------------------------------------------------------
    def approve(self, username: str) -> None:
        r = self.http.get(f"/hub/authorize/{quote(username)}")
        assert r.status_code in (302, 303), r.status_code

    def api(self, method: str, path: str, **kw) -> httpx.Response:
        return self.http.request(method, f"/hub/api{path}", headers=self._xsrf_header(), **kw)

    def add_to_group(self, group: str, users: list[str]) -> None:
        r = self.api("POST", f"/groups/{group}/users", json={"users": users})
        assert r.status_code == 200, r.text

    # --- server ----------------------------------------------------------------------------
    def spawn(self, timeout: float = 90) -> float:
        """Start my server and wait until it answers; return seconds from request to ready.

        Like JupyterHub's spawn page, it follows the progress event stream instead of
        polling, so waiting users add no load to the hub and "ready" is seen the moment the
        hub announces it."""
        t0 = time.monotonic()
        r = self.api("POST", f"/users/{self.name}/server")
        assert r.status_code in (201, 202), f"spawn: {r.status_code} {r.text}"
        if r.status_code == 202:  # still starting after the hub's slow_spawn_timeout
            self._follow_progress(t0 + timeout)
        ready = time.monotonic() - t0
        self._server_login()
        return ready

    def _follow_progress(self, deadline: float) -> None:
        path = f"/hub/api/users/{self.name}/server/progress"
        wait = httpx.Timeout(10, read=max(1.0, deadline - time.monotonic()))
        with self.http.stream("GET", path, headers=self._xsrf_header(), timeout=wait) as r:
            assert r.status_code == 200, f"progress of {self.name}: {r.status_code}"
            for line in r.iter_lines():
                if not line.startswith("data:"):
                    continue
                event = json.loads(line[len("data:"):])
                if event.get("ready"):
                    return
                if event.get("failed"):
                    raise AssertionError(f"server of {self.name} failed to start: {event.get('message')}")
                if time.monotonic() > deadline:
                    break
        raise AssertionError(f"server of {self.name} not ready before the deadline")

    def _server_login(self) -> None:
        """Open JupyterLab like a browser: the OAuth redirects set the user-server cookie."""
        r = self.http.get(f"/user/{self.name}/lab", follow_redirects=True)
        assert r.status_code == 200, f"JupyterLab page: {r.status_code} {r.text[:200]}"
        r = self.http.get(f"/user/{self.name}/api/status")
        assert r.status_code == 200, f"user server API: {r.status_code} {r.text[:200]}"

    def stop(self) -> None:
        r = self.api("DELETE", f"/users/{self.name}/server")
        assert r.status_code in (202, 204), r.text
        for _ in range(300):
            r = self.api("GET", f"/users/{self.name}")
            if not r.json().get("servers"):
                return
            time.sleep(0.1)

    # --- kernels ---------------------------------------------------------------------------
    def _server_xsrf(self) -> dict:
        for cookie in self.http.cookies.jar:
            if cookie.name == "_xsrf" and cookie.path.startswith(f"/user/{self.name}"):
                return {"X-XSRFToken": cookie.value}
        self.http.get(f"/user/{self.name}/lab")  # sets the server's _xsrf cookie
        for cookie in self.http.cookies.jar:
            if cookie.name == "_xsrf" and cookie.path.startswith(f"/user/{self.name}"):
                return {"X-XSRFToken": cookie.value}
        return {}

    def start_kernel(self) -> str:
        r = self.http.post(
            f"/user/{self.name}/api/kernels", json={"name": "python3"}, headers=self._server_xsrf()
        )
        assert r.status_code == 201, f"kernel start: {r.status_code} {r.text[:300]}"
        return r.json()["id"]

    def delete_kernel(self, kernel_id: str) -> None:
        self.http.delete(f"/user/{self.name}/api/kernels/{kernel_id}", headers=self._server_xsrf())

    def execute(self, kernel_id: str, code: str, timeout: float = 120) -> dict:
        """Run ``code`` over the kernel websocket; returns {status, stdout, stderr, error}."""
        ws_url = self.base.replace("http", "ws", 1) + f"/user/{self.name}/api/kernels/{kernel_id}/channels"
        cookie = "; ".join(f"{c.name}={c.value}" for c in self.http.cookies.jar)
        ws = websocket.create_connection(ws_url, cookie=cookie, timeout=timeout)
        try:
            msg_id = uuid.uuid4().hex
            ws.send(
                json.dumps(
                    {
                        "header": {
                            "msg_id": msg_id,
                            "username": self.name,
                            "session": uuid.uuid4().hex,
                            "msg_type": "execute_request",
                            "version": "5.3",
                        },
                        "parent_header": {},
                        "metadata": {},
                        "content": {"code": code, "silent": False, "store_history": False,
                                    "user_expressions": {}, "allow_stdin": False},
                        "channel": "shell",
                        "buffers": [],
                    }
                )
            )
            out = {"status": None, "stdout": "", "stderr": "", "error": None}
            deadline = time.monotonic() + timeout
            idle = False
            while time.monotonic() < deadline and not (idle and out["status"]):
                msg = json.loads(ws.recv())
                if msg.get("parent_header", {}).get("msg_id") != msg_id:
                    continue
                kind = msg["msg_type"]
                content = msg["content"]
                if kind == "stream":
                    out[content["name"]] += content["text"]
                elif kind == "error":
                    out["error"] = f"{content['ename']}: {content['evalue']}"
                elif kind == "execute_reply":
                    out["status"] = content["status"]
                elif kind == "status" and content.get("execution_state") == "idle":
                    idle = True
            return out
        finally:
            ws.close()

    def run(self, code: str) -> dict:
        kernel = self.start_kernel()
        try:
            return self.execute(kernel, code)
        finally:
            self.delete_kernel(kernel)
