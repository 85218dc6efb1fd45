"""``python -m squeezer``: the same command line as the ``squeezer`` script."""

from squeezer.cli import run

# The guard matters: worker processes started with "spawn" import the main module again.
if __name__ == "__main__":
    run()
