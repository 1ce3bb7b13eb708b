"""selfsup"""
