"""nmt: a small, fast neural machine translation system."""

__version__ = "0.1.0"
