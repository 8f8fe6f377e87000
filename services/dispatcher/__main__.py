"""`python -m services.dispatcher`: run the dispatcher."""

import gc

from services.common.runner import load_settings, serve

from .app import SERVICE, create_app
from .settings import DispatcherSettings


def main() -> None:
    settings = load_settings(DispatcherSettings.from_env, SERVICE)
    app = create_app(settings)
    # What is loaded by now (modules, classes, settings) lives as long as the process:
    # kept out of the cyclic collector's full passes, which otherwise walk all of it
    # again and again under load.
    gc.freeze()
    serve(SERVICE, settings, app, settings.port)


if __name__ == "__main__":
    main()
