"""podnet: the Kubernetes networking model on one Linux machine."""

__version__ = "0.1.0"
