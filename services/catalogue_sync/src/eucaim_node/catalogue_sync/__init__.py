"""catalogue_sync"""
