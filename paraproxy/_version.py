"""The version of paraproxy; read by setup.py with exec, so keep it a single assignment."""

__version__ = "2.0.0.dev0"
