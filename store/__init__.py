"""The directory, Redis state and the audit trail."""
