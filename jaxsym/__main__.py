"""``python -m jaxsym`` is the ``jaxsym`` console script."""

from jaxsym.cli import entry

if __name__ == "__main__":
    entry()
