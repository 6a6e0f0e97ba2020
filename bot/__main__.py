"""``python -m bot``: run the server (same as ``triagebot serve``)."""

import sys

from bot.cli import main

sys.exit(main(["serve", *sys.argv[1:]]))
