"""nmt: a small, fast neural machine translation system.

    from nmt import Translator
    Translator.load("models/transformer-de-en").translate(["Ein Hund rennt durch den Schnee."])
"""

__version__ = "0.1.0"
__all__ = ["Translator", "__version__"]


def __getattr__(name: str):
    # Lazy, so that `import nmt` (and `nmt --help`) does not load torch.
    if name == "Translator":
        from nmt.decode.translator import Translator

        return Translator
    raise AttributeError(f"module 'nmt' has no attribute {name!r}")
