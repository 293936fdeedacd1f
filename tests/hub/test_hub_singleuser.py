"""idsp.hub.singleuser: the user server defers the RFC 3987 parser, and IRI checks still work."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_iri_parser_is_built_only_when_an_iri_is_checked():
    code = textwrap.dedent(
        """
        import sys
        from idsp.hub.singleuser import _Deferred, defer_imports
        assert defer_imports() == ["rfc3987_syntax"]
        import jsonschema
        import jupyter_events  # what every user server imports at start
        assert isinstance(sys.modules["rfc3987_syntax"], _Deferred), "parser built at import"
        from rfc3987_syntax.utils import load_grammar  # submodules stay importable meanwhile
        assert callable(load_grammar)
        checker = jsonschema.Draft7Validator.FORMAT_CHECKER
        assert "iri" in checker.checkers
        assert checker.conforms("https://example.org/zaak/ü", "iri")
        assert not checker.conforms("geen iri", "iri")
        assert checker.conforms("../zaak#1", "iri-reference")
        assert not isinstance(sys.modules["rfc3987_syntax"], _Deferred)
        print("ok")
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"



def test_a_terminal_keeps_the_platforms_tools_after_the_login_profile(tmp_path):
    """Debian's /etc/profile resets PATH; the terminal command the hub gives every server puts
    the platform's bin back in front of it, so `idsp`, `python` and `dvc` are the platform's."""
    import subprocess
    import sys
    from pathlib import Path

    from idsp.config import load_config
    from idsp.hub import configurer
    from jupyter_server.serverapp import ServerApp
    from traitlets.config import Config

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "idsp").symlink_to(Path(sys.prefix) / "bin" / "idsp")
    c = Config()
    configurer.apply(load_config(environ={"IDSP_HOME": str(tmp_path / "platform")}), c, python=str(bin_dir / "python"))
    server = ServerApp()
    server.parse_command_line(c.Spawner.args)  # as jupyterhub-singleuser reads them
    command = server.terminado_settings["shell_command"]
    home = tmp_path / "home"
    home.mkdir()
    # the interactive shell reads its commands from stdin, as a terminal's would
    done = subprocess.run(command, input='command -v idsp; echo "$PATH"\nexit\n', capture_output=True, text=True,
                          env={"HOME": str(home), "PATH": "/usr/bin:/bin", "TERM": "dumb"}, timeout=30)
    lines = done.stdout.strip().splitlines()
    assert lines[0] == str(bin_dir / "idsp"), done
    assert lines[1].startswith(f"{bin_dir}:"), done
