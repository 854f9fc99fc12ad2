"""From a chantier's CSV to routed referrals: row parsing (pure), salarié·es import, the routing run."""
