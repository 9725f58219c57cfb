"""Alerts (issue 13): conditions evaluated from the status snapshot, an outbox of deliveries,
delivery workers, destinations and the outbound policy."""
