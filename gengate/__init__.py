"""gengate: a self-hosted AI generation API gateway with a durable task engine."""

__version__ = "0.1.0"
