"""regionx: replace slow numerical code regions with trained neural networks."""
__version__ = "0.1.0"
