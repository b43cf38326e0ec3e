"""llm2ctr: distil an LLM into a small text encoder and train it inside a PRECTR-V2 CTR ranker."""

__version__ = "0.1.0"


def _register_auto_classes() -> None:
    """Make ``AutoModel.from_pretrained(folder)`` work for the student after ``import llm2ctr``."""
    try:
        from llm2ctr.student.modeling import register_auto_classes
    except ImportError:  # student stage not importable (e.g. partial install): nothing to register
        return
    register_auto_classes()


_register_auto_classes()
