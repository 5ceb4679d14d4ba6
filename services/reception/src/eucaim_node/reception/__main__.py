from eucaim_node.runtime import run_service

from .config import ReceptionSettings
from .main import NAME, create_app

if __name__ == "__main__":
    run_service(NAME, ReceptionSettings, create_app)
