from eucaim_node.runtime import run_service

from .config import JobsSettings
from .main import NAME, create_app

if __name__ == "__main__":
    run_service(NAME, JobsSettings, create_app)
