"""Example handlers shipped with the package, used by ``lambda-lab demo`` and ``serve``."""
