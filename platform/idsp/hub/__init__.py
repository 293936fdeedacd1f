"""The single-server hub: JupyterHub + configurable-http-proxy + NativeAuthenticator + MLflow.

Rule: ``configurer.apply`` is the only place that turns ``platform.yaml`` into JupyterHub
traitlets; ``supervisor.up`` is the only place that starts or stops processes. Nothing in
this package is imported by ``idsp --help``.
"""
