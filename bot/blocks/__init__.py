"""Block Kit builders, by audience: the case card (card.py), modals (modals.py), replies to
one user (replies.py); the shared elements and Slack's limits in elements.py."""
