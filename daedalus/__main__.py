import sys

try:
    from .cli import main
except KeyboardInterrupt:  # Ctrl-C while the CLI itself is still being imported: no traceback either
    sys.stderr.write("daedalus: interrupted\n")
    raise SystemExit(130) from None

raise SystemExit(main())
