"""bagio"""
