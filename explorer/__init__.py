"""Adversarial Explorer: see adversarial examples, their gradients, boundaries and embeddings.

The package is light to import; heavy modules (torch, torchvision, umap) load where they are used.
"""

__version__ = "0.1.0"
