from eucaim_node.runtime import run_service

from .config import AuditSettings
from .main import NAME, create_app

if __name__ == "__main__":
    run_service(NAME, AuditSettings, create_app)
