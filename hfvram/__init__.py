"""hfvram: how much GPU memory a Hugging Face model needs, per framework, and whether it fits.

    >>> import hfvram
    >>> result = hfvram.analyze("meta-llama/Llama-2-7b-hf", context=8192)
    >>> result.to_dict()["kv_cache"]["bytes"]

Importing this package is cheap: the Hub client, transformers and the estimators load on first use.
"""

__version__ = "0.1.0"

__all__ = ["analyze", "list_quants", "HfvramError", "__version__"]


def analyze(model, **settings):
    """Analyse one model (Hub id, `org/name@revision`, local folder or config.json). See `hfvram.analysis`."""
    from .analysis import analyze as _analyze

    return _analyze(model, **settings)


def list_quants(model, **settings):
    """Every model of a repo that holds several (the quants of a GGUF repo, the bit-rate branches of an EXL2 repo),
    analysed at the same settings. See `hfvram.analysis.list_quants`."""
    from .analysis import list_quants as _list_quants

    return _list_quants(model, **settings)


def __getattr__(name):
    if name == "HfvramError":
        from .errors import HfvramError

        return HfvramError
    raise AttributeError(name)
