"""`python -m services.registration`: run the registration service, or an operator command."""

import sys

from services.common.runner import load_settings, serve

from .app import SERVICE, create_app
from .commands import main_command, parser
from .settings import RegistrationSettings


def main() -> None:
    args = parser().parse_args()
    settings = load_settings(RegistrationSettings.from_env, SERVICE)
    if args.command is not None:
        sys.exit(main_command(args, settings))
    serve(SERVICE, settings, create_app(settings), settings.port)


if __name__ == "__main__":
    main()
