"""From a chantier's CSV to routed referrals: pure row parsing (``csv_rows``), the
all-or-nothing import (``salaries``), the bulk routing run (``run``).
"""
