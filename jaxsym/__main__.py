"""``python -m jaxsym`` is the ``jaxsym`` console script."""

from jaxsym.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
