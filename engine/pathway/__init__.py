"""The person's pathway beside the referrals: how they came, housing and health events, exit
and follow-ups — the facts that make the network's impact measurable."""
