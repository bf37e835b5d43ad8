"""The main job on one machine: each step calls the public SDK and prints what it did."""

from __future__ import annotations

import timonel


def main() -> None:
    print(f"timonel {timonel.__version__}")


if __name__ == "__main__":
    main()
