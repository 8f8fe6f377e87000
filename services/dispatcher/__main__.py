"""`python -m services.dispatcher`: run the dispatcher."""

from services.common.runner import load_settings, serve

from .app import SERVICE, create_app
from .settings import DispatcherSettings


def main() -> None:
    settings = load_settings(DispatcherSettings.from_env, SERVICE)
    serve(SERVICE, settings, create_app(settings), settings.port)


if __name__ == "__main__":
    main()
