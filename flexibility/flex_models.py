"""Grid flexibility: portfolios, service accounts, offers, activations (issue 6)."""
