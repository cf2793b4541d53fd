"""Downstream models that score translations by what a perception stack can do with them."""
