"""Subcommand modules, in the order `daedalus --help` lists them."""

COMMANDS = ["models", "hardware", "memory", "simulate", "validate", "report", "plan", "figures", "claims", "bench",
            "calibrate", "run"]
