"""A pure-NumPy strategy: plain gradient descent with a user-supplied loss-and-gradient function.

It needs no framework and proves the core is framework-agnostic.
"""

from steploop.numpy.gradient_descent import GradientDescent

__all__ = ["GradientDescent"]
