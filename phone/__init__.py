"""A terminal phone: plays the phone network against the service on the simulated carrier.

It answers the calls and receives the texts the simulated carrier recorded, and sends
the service the same signed webhooks Twilio would, over HTTP. ``flask phone`` is its
command line (``phone/cli.py``); ``PhoneNetwork`` (``phone/network.py``) is the API.
"""
