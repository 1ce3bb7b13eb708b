"""briges"""
