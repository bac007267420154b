import sys

try:
    from .cli import main
except KeyboardInterrupt:     # Ctrl-C before the CLI's own handler is in place
    print("\ninterrupted", file=sys.stderr)
    sys.exit(130)

sys.exit(main())
