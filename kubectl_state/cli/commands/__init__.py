"""One module per `kubectl state` subcommand, each with `register(subparsers)` and `run`."""
