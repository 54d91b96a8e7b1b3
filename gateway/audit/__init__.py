"""The audit: a tamper-evident record of every disclosure (who saw whose data, what, when and why)."""
