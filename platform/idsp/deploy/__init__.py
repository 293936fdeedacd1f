"""Deployment targets rendered from the one ``platform.yaml``.

Rule: rendering is pure (config in, documents out) and never writes a secret value: every
secret is a reference to a Kubernetes Secret by name and key, listed in SECRETS.md.
"""
