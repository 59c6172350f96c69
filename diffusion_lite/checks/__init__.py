"""Exercise checkers.

``core`` holds the machinery (call the learner's function on random inputs, compare with the
reference, explain what is wrong); one module per chapter (``ch01``, ``ch02``, ...) holds that
chapter's checkers. In a notebook::

    from diffusion_lite.checks import ch01
    ch01.check_msd(my_msd)
"""

from .core import ExerciseError, check_function, check_value

__all__ = ["ExerciseError", "check_function", "check_value"]
