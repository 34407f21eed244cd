"""q2c: quote-to-cash integration hub."""

__version__ = "0.1.0"
