from eucaim_node.runtime import run_service

from .config import MetadataSettings
from .main import NAME, create_app

if __name__ == "__main__":
    run_service(NAME, MetadataSettings, create_app)
