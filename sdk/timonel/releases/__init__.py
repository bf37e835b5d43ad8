"""Releases: a SavedModel packaged, published once into a model repository, and read back."""
