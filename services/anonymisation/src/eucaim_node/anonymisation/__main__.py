from eucaim_node.runtime import run_service

from .config import AnonymisationSettings
from .main import NAME, create_app

if __name__ == "__main__":
    run_service(NAME, AnonymisationSettings, create_app)
