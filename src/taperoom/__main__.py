"""Run the Taperoom CLI as ``python -m taperoom``."""

from __future__ import annotations

from taperoom.cli import main

if __name__ == "__main__":
    main()
