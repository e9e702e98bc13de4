"""The one error type of the simulator: a message fit for one line, naming file and field."""


class ConfigError(ValueError):
    """Bad input: unknown name, malformed file, missing or invalid field.

    The message is complete on its own (which file, which field, what was expected) so the CLI
    can print it as a single line and exit 2.
    """


def raise_with_path(exc: BaseException, path, tmp=None) -> None:
    """Re-raise `exc`; an OSError from write() (disk full) carries no file name, and one from the
    temporary file beside `path` names that: either gets `path`, so the one-line message at the CLI
    names the file that could not be written."""
    if isinstance(exc, OSError) and exc.errno is not None and (
            exc.filename is None or (tmp is not None and str(exc.filename) == str(tmp))):
        raise OSError(exc.errno, exc.strerror, str(path)) from None
    raise exc
