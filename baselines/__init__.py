"""Baseline translators, one sub-package each; every sub-package registers its methods on import."""
