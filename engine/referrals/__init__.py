"""A referral's life: the one transition door (``transitions``), the use cases on it
(``actions``), the triage queue (``queue``) and the case file (``case_file``).
"""
