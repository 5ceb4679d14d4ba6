"""EUCAIM federation: collections, coding, search, HealthDCAT-AP."""
