"""Benchmarks of the vae_course package: training speed (``speed.py``) and the quality of
every recipe's model (``quality.py``).  Benchmarks, not tests: nothing here asserts a time.
See ``benchmarks/README.md``."""
