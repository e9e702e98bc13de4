"""The one error type of the simulator: a message fit for one line, naming file and field."""


class ConfigError(ValueError):
    """Bad input: unknown name, malformed file, missing or invalid field.

    The message is complete on its own (which file, which field, what was expected) so the CLI
    can print it as a single line and exit 2.
    """
