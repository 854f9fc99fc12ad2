"""Pure domain vocabulary with no I/O: errors, the referral lifecycle table, the clock, the business calendar."""
