"""Indicators of the network's impact and of its daily operation, computed from plain data.

Pure (standard library only): the engine reads the database into the records of
``reporting.records`` and hands them over; every indicator is testable on a handful of
hand-made people.
"""
