"""llm2ctr: distil an LLM into a small text encoder and train it inside a PRECTR-V2 CTR ranker."""

__version__ = "0.1.0"
