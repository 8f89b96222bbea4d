"""mlops: a continuously retrained house-price ML system."""

__version__ = "0.1.0"
