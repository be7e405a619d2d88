"""`python -m pykube_server <component> [flags]`: the same as the `pykube-server` command."""

from pykube_server.cmd.main import main

if __name__ == "__main__":
    main()
