"""reception"""
