"""A referral's life: the one transition door, the use cases built on it, the queue and the case file."""
