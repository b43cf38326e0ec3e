"""llm2ctr: distil an LLM into a small text encoder and train it inside a PRECTR-V2 CTR ranker."""

__version__ = "0.1.0"

from llm2ctr import _autoregister  # noqa: E402

# ``AutoModel.from_pretrained(student_folder)`` works after ``import llm2ctr`` (registered lazily).
_autoregister.install()
