"""The voice call flow: TwiML webhooks Twilio calls during a phone call."""
