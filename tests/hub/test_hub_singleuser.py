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
