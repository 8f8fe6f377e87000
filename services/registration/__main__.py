"""`python -m services.registration`: run the registration service."""

from services.common.runner import load_settings, serve

from .app import SERVICE, create_app
from .settings import RegistrationSettings


def main() -> None:
    settings = load_settings(RegistrationSettings.from_env, SERVICE)
    serve(SERVICE, settings, create_app(settings), settings.port)


if __name__ == "__main__":
    main()
