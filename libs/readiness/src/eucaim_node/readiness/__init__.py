"""EUCAIM onboarding readiness of a running node."""
