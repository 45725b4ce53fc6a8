"""``python -m core.emulator --port 8787``: run the emulator in the foreground."""

import argparse

from core.emulator import add_cli_arguments, config_from_args, serve


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m core.emulator", description=__doc__)
    add_cli_arguments(parser)
    args = parser.parse_args(argv)
    serve(args.host, args.port, config_from_args(args))


if __name__ == "__main__":
    main()
