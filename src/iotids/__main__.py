"""``python -m iotids``: the same command as the ``iotids`` console script."""

from iotids.cli import main

main()
