"""The domain with no I/O: errors, the referral lifecycle table, the clock, the business
calendar, pseudonymous references, the closed vocabularies and their French labels.
"""
