"""`python -m services.upload`: run the upload service."""

from services.common.runner import load_settings, serve

from .app import SERVICE, create_app
from .settings import UploadSettings


def main() -> None:
    settings = load_settings(UploadSettings.from_env, SERVICE)
    settings.upload_dir.mkdir(parents=True, exist_ok=True)
    serve(SERVICE, settings, create_app(settings), settings.port)


if __name__ == "__main__":
    main()
