"""App plumbing the flows share: configuration, errors, auth, observability, the Twilio layer."""
