"""jobyard: run users' commands as isolated, resource-limited jobs over mTLS gRPC."""

__version__ = "0.1.0"
