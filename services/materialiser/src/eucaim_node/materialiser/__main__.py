from eucaim_node.runtime import run_service

from .config import MaterialiserSettings
from .main import NAME, create_app

if __name__ == "__main__":
    run_service(NAME, MaterialiserSettings, create_app)
