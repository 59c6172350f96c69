"""``python -m diffusion_lite …`` runs the command line (also what ``torchrun -m diffusion_lite`` starts)."""

import sys

from diffusion_lite.cli import main

if __name__ == "__main__":
    sys.exit(main())
