"""concordia_like: generative-agent social worlds with a grounding Game Master."""

__version__ = "0.1.0"
